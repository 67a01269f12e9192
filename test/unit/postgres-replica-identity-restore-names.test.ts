import { describe, expect, it } from 'vitest';
import { restoreReplicaIdentity } from '../../adapters/postgres/postgres-keyless.js';
import { moveScope } from '../../adapters/postgres/postgres-replication.js';

/** A source whose sentinel rows are given, and whose catalog knows only public.audit (REPLICA IDENTITY FULL). */
function source(records: string[]) {
  const statements: { sql: string; params?: unknown[] }[] = [];
  const client = {
    query: async (sql: string, params?: unknown[]) => {
      statements.push({ sql, params });
      if (sql.startsWith('SELECT id, token')) return { rows: records.map((token, i) => ({ id: 100 + i, token })) };
      if (sql.includes('to_regclass')) {
        const name = String(params?.[0]);
        if (name.includes(';')) throw Object.assign(new Error('invalid name syntax'), { code: '42602' });
        return { rows: name === 'public.audit' ? [{ s: 'public', t: 'audit', i: 'f' }] : [] };
      }
      return { rows: [] };
    },
  };
  return { client: client as never, statements };
}

describe('restoring replica identities from the sentinel rows', () => {
  it('names the table as the catalog spells it, quoted, and never runs text read from a row', async () => {
    const hostile = 'public.audit; DROP TABLE public.accounts';
    const { client, statements } = source([JSON.stringify({ table: 'public.audit', identity: 'd' }), JSON.stringify({ table: hostile, identity: 'n' }), JSON.stringify({ table: 'public.gone', identity: 'd' })]);
    const restored = await restoreReplicaIdentity(client, moveScope('p'));
    expect(restored).toEqual(['"public"."audit"']);
    const alters = statements.filter((s) => s.sql.startsWith('ALTER'));
    expect(alters.map((s) => s.sql)).toEqual(['ALTER TABLE "public"."audit" REPLICA IDENTITY DEFAULT']);
    expect(statements.some((s) => s.sql.includes('DROP TABLE'))).toBe(false);
    // Every record is consumed, the unresolvable ones too.
    expect(statements.filter((s) => s.sql.startsWith('DELETE')).map((s) => s.params)).toEqual([[100], [101], [102]]);
  });
});
