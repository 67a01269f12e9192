import { UsageError } from '../errors.js';
import type { Plan } from './types.js';

/**
 * Passwords found inside plan URLs, keyed by the object that named them. Kept beside the plan, not in it,
 * so serialising a plan (journal, --json, reports) can never carry one.
 */
const urlPasswords = new WeakMap<object, string>();

export function rememberUrlPassword(holder: object, password: string): void {
  urlPasswords.set(holder, password);
}

export interface PlanSecrets {
  source?: string;
  target?: string;
  /** PgBouncer admin console password. */
  routerAdmin?: string;
  /** Password of the plan's own replication account (source.replication). */
  replication?: string;
  /** Every resolved secret, for redaction lists. */
  all: string[];
}

function resolve(holder: object, envName: string | undefined, env: NodeJS.ProcessEnv, key: string): string | undefined {
  if (envName !== undefined) {
    const value = env[envName];
    if (value === undefined || value === '') {
      throw new UsageError(`${key}: environment variable ${envName} is not set`, `export ${envName}=<password> before running cutover`);
    }
    return value;
  }
  return urlPasswords.get(holder);
}

/** The passwords a plan names: from its `passwordEnv` variables, else from its URLs. */
export function resolvePlanSecrets(plan: Plan, env: NodeJS.ProcessEnv): PlanSecrets {
  const source = resolve(plan.source, plan.source.passwordEnv, env, 'source.passwordEnv');
  const target = resolve(plan.target, plan.target.passwordEnv, env, 'target.passwordEnv');
  const routerAdmin = plan.router.kind === 'pgbouncer' ? resolve(plan.router, plan.router.adminPasswordEnv, env, 'router.adminPasswordEnv') : undefined;
  const replication = plan.source.replication ? resolve(plan.source.replication, plan.source.replication.passwordEnv, env, 'source.replication.passwordEnv') : undefined;
  return {
    ...(source !== undefined ? { source } : {}),
    ...(target !== undefined ? { target } : {}),
    ...(routerAdmin !== undefined ? { routerAdmin } : {}),
    ...(replication !== undefined ? { replication } : {}),
    all: [source, target, routerAdmin, replication].filter((s): s is string => s !== undefined),
  };
}
