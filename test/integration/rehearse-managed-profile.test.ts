import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateJson, type JsonSchema } from '../../src/report/json-schema.js';
import { findHaproxy } from '../../adapters/routers/haproxy-sandbox.js';
import { missing } from '../helpers/availability.js';
import { ROOT } from '../helpers/built-cli.js';
import { cli } from '../helpers/cli.js';
import { mariadbMissing } from '../helpers/mariadb.js';
import { pg15Missing, pg18Missing } from '../helpers/pg.js';
import { pgbouncerMissing } from '../helpers/pgbouncer.js';

const unavailable = {
  postgres: pg15Missing ?? pg18Missing ?? pgbouncerMissing,
  mariadb: mariadbMissing ?? (await missing('HAProxy (haproxy)', () => findHaproxy())),
};

const gone = (dir: string) =>
  access(dir).then(
    () => false,
    () => true,
  );

/**
 * `cutover rehearse --privileges managed`: the sandboxes get the managed test profile (an admin without
 * superuser / SUPER / READ_ONLY ADMIN; on PostgreSQL a provider superuser session on the moved database) and the
 * cutover runs as that admin; the report says so.
 */
describe.each(['postgres', 'mariadb'] as const)('cutover rehearse --privileges managed --engine %s', (engine) => {
  it.skipIf(unavailable[engine])(
    'cuts over as the admin without superuser, every acknowledged write on the target, the report names the profile',
    async () => {
      const r = await cli(['rehearse', '--engine', engine, '--privileges', 'managed', '--rows', '5000', '--clients', '2', '--json']);
      const out = JSON.parse(r.out);
      const doc = r.code === 0 ? out : out.report;
      expect(doc?.errors, r.err).toEqual([]);
      expect(r.code, r.err).toBe(0);
      expect(doc).toMatchObject({ ok: true, mode: 'sandbox', engine, privileges: 'managed', clientErrors: 0, missingWrites: [], fence: { leakClean: true } });
      expect(doc.acknowledgedWrites).toBeGreaterThan(50);
      expect(doc.verifiedWrites).toBe(doc.acknowledgedWrites);
      // The cutover connected as the managed admin, never as the sandbox's superuser.
      expect(r.err).toMatch(/managed profile/);
      if (engine === 'postgres') expect(doc.warnings.join('\n')).toMatch(/provider agent/);
      const schema = JSON.parse(await readFile(join(ROOT, 'schemas/rehearse-report.schema.json'), 'utf8')) as JsonSchema;
      expect(validateJson(schema, doc)).toEqual([]);
      const dirs = [...r.err.matchAll(/sandbox .* in (\/\S+)/g)].map((m) => m[1]!);
      expect(dirs).toHaveLength(3);
      for (const d of dirs) expect(await gone(d), d).toBe(true);
      console.log(`rehearse --privileges managed --engine ${engine}: write-blocked ${doc.writeBlockedMs} ms (fence to lift ${doc.fenceToLiftMs} ms), ${doc.acknowledgedWrites} acknowledged writes verified`);
    },
    240_000,
  );
});

describe('cutover rehearse --tenants --privileges managed', () => {
  it.skipIf(unavailable.postgres)(
    'moves every tenant as the admin without superuser; the provider session on the first tenant is named, not ended; every acknowledged write on its tenant',
    async () => {
      const r = await cli(['rehearse', '--tenants', '3', '--privileges', 'managed', '--rows', '3000', '--clients', '2', '--json']);
      const out = JSON.parse(r.out);
      const doc = r.code === 0 ? out : out.report;
      expect(doc?.errors, r.err).toEqual([]);
      expect(r.code, r.err).toBe(0);
      expect(doc).toMatchObject({ ok: true, privileges: 'managed', clientErrors: 0, missingWrites: [], tenants: { count: 3, done: 3 } });
      expect(doc.verifiedWrites).toBe(doc.acknowledgedWrites);
      expect(doc.acknowledgedWrites).toBeGreaterThan(20);
      expect(r.err).toMatch(/managed profile: the wave runs as an admin without superuser/);
      // Only the first tenant has the provider's session: its fence names it and leaves it.
      expect(doc.warnings.join('\n')).toMatch(/tenant_01.*provider agent|provider agent.*tenant_01/s);
      const schema = JSON.parse(await readFile(join(ROOT, 'schemas/rehearse-report.schema.json'), 'utf8')) as JsonSchema;
      expect(validateJson(schema, doc)).toEqual([]);
      const dirs = [...r.err.matchAll(/sandbox .* in (\/\S+)/g)].map((m) => m[1]!);
      expect(dirs).toHaveLength(3);
      for (const d of dirs) expect(await gone(d), d).toBe(true);
      console.log(`rehearse --tenants 3 --privileges managed: per-tenant p95 ${doc.tenants.windows.p95Ms} ms, ${doc.acknowledgedWrites} acknowledged writes verified`);
    },
    240_000,
  );
});

describe('cutover rehearse --privileges: usage', () => {
  it('with --plan it exits 2: the plan decides', async () => {
    const r = await cli(['rehearse', '--plan', 'staging.yaml', '--yes', '--privileges', 'managed']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/the plan's `privileges` key decides/);
  });
});
