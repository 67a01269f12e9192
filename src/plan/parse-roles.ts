import { isMap, isScalar } from 'yaml';
import { engineCapabilities } from '../../adapters/registry.js';
import type { Engine } from '../util/db-url.js';
import { envName } from './env-name.js';
import type { Fields } from './plan-reader.js';
import type { PlanRoles } from './types.js';

/** `roles: { passwordEnv: { <role>: <VARIABLE> } }`: the passwords of login roles sync creates (PostgreSQL). */
export function readRoles(top: Fields, engine: Engine | undefined): PlanRoles | undefined | null {
  if (!top.has('roles')) return undefined;
  if (engine !== undefined && !engineCapabilities(engine).rolePasswords)
    return top.report('roles', `is for PostgreSQL roles; ${engine} accounts are copied with their password hashes (accounts: copy)`, 'remove roles from the plan') ?? null;
  const f = top.fields('roles', ['passwordEnv']);
  if (!f) return null;
  const node = f.valueNode('passwordEnv');
  const fix = 'e.g. roles: { passwordEnv: { app: APP_PASSWORD } } (role name: the variable holding its password)';
  if (!isMap(node)) return f.report('passwordEnv', 'must map role names to the variables holding their passwords', fix) ?? null;
  const names = node.items.map((p) => (isScalar(p.key) ? String(p.key.value) : '')).filter((n) => n !== '');
  const m = f.fields('passwordEnv', names);
  if (!m) return null;
  const passwordEnv: Record<string, string> = {};
  for (const role of m.keys()) {
    const variable = envName(m, role);
    if (variable === undefined) return null;
    passwordEnv[role] = variable;
  }
  if (Object.keys(passwordEnv).length === 0) return f.report('passwordEnv', 'names no role', fix) ?? null;
  return { passwordEnv };
}
