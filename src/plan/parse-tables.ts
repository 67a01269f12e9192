import { isMap, isScalar } from 'yaml';
import { engineCapabilities } from '../../adapters/registry.js';
import type { Fields } from './plan-reader.js';
import type { Engine } from '../util/db-url.js';
import type { KeylessChoice, PlanTables } from './types.js';

const CHOICES: readonly KeylessChoice[] = ['block', 'full', 'dump'];
const FIX = 'e.g. tables: { keyless: full } or tables: { keyless: { default: block, public.pgbench_history: dump } }';

/**
 * `tables: { keyless: block | full | dump }`, or a map of `schema.table` (as PostgreSQL prints it,
 * `public."audit log"`) to a choice, with `default` for the tables it does not name. Returns null when the key is
 * invalid (already reported), undefined when it is absent (every keyless table blocks, as before).
 */
export function readTables(top: Fields, engine: Engine | undefined): PlanTables | null | undefined {
  if (!top.has('tables')) return undefined;
  if (engine !== undefined && !engineCapabilities(engine).keylessTables) {
    top.report('tables', `applies to PostgreSQL (tables without a key under logical replication); ${engine} moves by dump and binlog`, 'remove tables from the plan');
    return null;
  }
  const f = top.fields('tables', ['keyless']);
  if (!f) return null;
  if (!f.has('keyless')) return { keyless: { default: 'block', tables: {} } };
  const node = f.valueNode('keyless');
  if (!isMap(node)) {
    const choice = f.oneOf('keyless', CHOICES);
    return choice ? { keyless: { default: choice, tables: {} } } : null;
  }
  const names = node.items.map((p) => (isScalar(p.key) ? String(p.key.value) : '')).filter((n) => n !== '');
  const m = f.fields('keyless', names);
  if (!m) return null;
  let ok = true;
  let fallback: KeylessChoice = 'block';
  const tables: Record<string, KeylessChoice> = {};
  for (const name of m.keys()) {
    const choice = m.oneOf(name, CHOICES);
    if (!choice) {
      ok = false;
      continue;
    }
    if (name === 'default') fallback = choice;
    else if (!name.includes('.')) {
      m.report(name, `"${name}" is not a schema-qualified table`, FIX);
      ok = false;
    } else tables[name] = choice;
  }
  return ok ? { keyless: { default: fallback, tables } } : null;
}
