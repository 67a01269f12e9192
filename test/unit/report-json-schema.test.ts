import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { validateJson, type JsonSchema } from '../../src/report/json-schema.js';

const schema: JsonSchema = {
  type: 'object',
  properties: {
    ok: { type: 'boolean' },
    mode: { enum: ['sandbox', 'plan'] },
    rows: { type: ['integer', 'null'], minimum: 0 },
    missing: { type: 'array', items: { type: 'string', pattern: '^\\d+:\\d+$' } },
  },
  required: ['ok', 'mode'],
  additionalProperties: false,
};

describe('JSON Schema subset validator (checks the rehearse report)', () => {
  it('accepts a conforming document', () => {
    expect(validateJson(schema, { ok: true, mode: 'plan', rows: null, missing: ['1:2'] })).toEqual([]);
  });

  it('names each violation by path: type, enum, minimum, pattern, required, unexpected property', () => {
    const errors = validateJson(schema, { ok: 'yes', mode: 'x', rows: -1, missing: ['a'], extra: 1 });
    expect(errors).toEqual([
      '$.ok: expected boolean, got string',
      '$.mode: "x" is not one of ["sandbox","plan"]',
      '$.rows: -1 < minimum 0',
      '$.missing[0]: "a" does not match ^\\d+:\\d+$',
      '$: unexpected property "extra"',
    ]);
    expect(validateJson(schema, { ok: true })).toEqual(['$: missing required property "mode"']);
    expect(validateJson({ type: 'integer' }, 1.5)).toEqual(['$: expected integer, got number']);
  });

  it('refuses keywords it does not check, so a schema cannot claim more than is validated', () => {
    expect(validateJson({ oneOf: [] } as JsonSchema, 1)).toEqual(['$: schema uses unsupported keyword(s) oneOf']);
  });

  it('the report schema in the repo uses only the checked subset', async () => {
    const report = JSON.parse(await readFile(new URL('../../schemas/rehearse-report.schema.json', import.meta.url), 'utf8')) as JsonSchema;
    const keywords = new Set<string>();
    const walk = (s: Record<string, unknown>) => {
      Object.keys(s).forEach((k) => keywords.add(k));
      Object.values((s.properties as Record<string, Record<string, unknown>>) ?? {}).forEach(walk);
      if (s.items) walk(s.items as Record<string, unknown>);
    };
    walk(report as Record<string, unknown>);
    expect(validateJson(report, {}).some((e) => e.includes('unsupported'))).toBe(false);
    expect([...keywords].filter((k) => !['$schema', '$id', 'title', 'description', 'type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'minimum', 'pattern'].includes(k))).toEqual([]);
  });
});
