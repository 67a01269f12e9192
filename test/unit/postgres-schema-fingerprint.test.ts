import { describe, expect, it } from 'vitest';
import { driftFindings, schemaDifferences, type SchemaFingerprint } from '../../adapters/postgres/postgres-schema-fingerprint.js';

function fp(...objects: Array<[kind: 'table' | 'column' | 'index', name: string, definition: string]>): SchemaFingerprint {
  return new Map(objects.map(([kind, name, definition]) => [`${kind} ${name}`, { kind, name, definition }]));
}

describe('schema fingerprint comparison (the drift gate)', () => {
  it('names what only one side has and what differs, and nothing else', () => {
    const src = fp(
      ['table', 'public.items', 'table'],
      ['column', 'public.items.id', 'bigint NOT NULL'],
      ['column', 'public.items.color', 'text'],
      ['index', 'public.i1', 'CREATE INDEX i1 ON public.items USING btree (id)'],
    );
    const dst = fp(['table', 'public.items', 'table'], ['column', 'public.items.id', 'integer NOT NULL'], ['index', 'public.i1', 'CREATE INDEX i1 ON public.items USING btree (id)'], ['table', 'public.extra', 'table']);
    const diffs = schemaDifferences(src, dst);
    expect(diffs).toEqual([
      { kind: 'column', name: 'public.items.color', source: 'text' },
      { kind: 'column', name: 'public.items.id', source: 'bigint NOT NULL', target: 'integer NOT NULL' },
      { kind: 'table', name: 'public.extra', target: 'table' },
    ]);
    const findings = driftFindings(diffs, src.size);
    expect(findings.map((f) => [f.severity, f.message])).toEqual([
      ['blocker', 'column public.items.color (text) exists on the source but not on the target'],
      ['blocker', 'column public.items.id differs: source bigint NOT NULL, target integer NOT NULL'],
      ['blocker', 'table public.extra (table) exists on the target but not on the source'],
    ]);
  });

  it('equal schemas give one info line with the count compared', () => {
    const a = fp(['table', 'public.t', 'table'], ['column', 'public.t.id', 'integer']);
    const f = driftFindings(schemaDifferences(a, new Map(a)), a.size);
    expect(f).toEqual([expect.objectContaining({ severity: 'info', message: expect.stringMatching(/schemas match \(2 objects/) })]);
  });
});
