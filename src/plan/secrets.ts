import { UsageError } from '../errors.js';
import { parseDbUrl, urlHasPassword, type Engine } from '../util/db-url.js';
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
  /** Password of the control database (`state: postgres://...`). */
  state?: string;
  /** Passwords of roles sync creates (plan `roles.passwordEnv`), by role. */
  rolePasswords?: Record<string, string>;
  /** Every resolved secret, for redaction lists. */
  all: string[];
}

/**
 * A variable name as messages may show it. Operators sometimes write the password itself where its variable's
 * name belongs; only a conventional name (upper case, digits, _) is echoed, anything else could be that password.
 */
export function shownEnvName(name: string): string | undefined {
  return /^[A-Z_][A-Z0-9_]*$/.test(name) ? name : undefined;
}

/** The one line for a password variable that is not set or empty, without echoing a name that may be a password. */
export function unsetPasswordEnvError(key: string, name: string): UsageError {
  const shown = shownEnvName(name);
  if (shown) return new UsageError(`${key}: environment variable ${shown} is not set (or empty)`, `export ${shown}=<password> before running cutover`);
  return new UsageError(
    `${key}: the environment variable it names is not set (or empty; the name is not shown: it does not look like one and may be the password itself)`,
    `${key} takes the NAME of a variable that holds the password (e.g. SRC_PASSWORD), never the password; export that variable before running cutover`,
  );
}

/** One rule for a password named by a variable (plan key or --password-env): set and not empty. */
export function passwordFromEnv(env: NodeJS.ProcessEnv, envName: string, key: string): string {
  const value = env[envName];
  if (value === undefined || value === '') throw unsetPasswordEnvError(key, envName);
  return value;
}

function resolve(holder: object, envName: string | undefined, env: NodeJS.ProcessEnv, key: string): string | undefined {
  if (envName !== undefined) return passwordFromEnv(env, envName, key);
  return urlPasswords.get(holder);
}

/** The passwords a plan names: from its `passwordEnv` variables, else from its URLs. */
export function resolvePlanSecrets(plan: Plan, env: NodeJS.ProcessEnv): PlanSecrets {
  const source = resolve(plan.source, plan.source.passwordEnv, env, 'source.passwordEnv');
  const target = resolve(plan.target, plan.target.passwordEnv, env, 'target.passwordEnv');
  const routerAdmin = plan.router.kind === 'pgbouncer' ? resolve(plan.router, plan.router.adminPasswordEnv, env, 'router.adminPasswordEnv') : undefined;
  const replication = plan.source.replication ? resolve(plan.source.replication, plan.source.replication.passwordEnv, env, 'source.replication.passwordEnv') : undefined;
  const state = plan.stateDb ? resolve(plan.stateDb, plan.stateDb.passwordEnv, env, 'state.passwordEnv') : undefined;
  const rolePasswords = plan.roles ? Object.fromEntries(Object.entries(plan.roles.passwordEnv).map(([role, name]) => [role, passwordFromEnv(env, name, `roles.passwordEnv.${role}`)])) : undefined;
  return {
    ...(source !== undefined ? { source } : {}),
    ...(target !== undefined ? { target } : {}),
    ...(routerAdmin !== undefined ? { routerAdmin } : {}),
    ...(replication !== undefined ? { replication } : {}),
    ...(state !== undefined ? { state } : {}),
    ...(rolePasswords !== undefined ? { rolePasswords } : {}),
    all: [source, target, routerAdmin, replication, state, ...Object.values(rolePasswords ?? {})].filter((s): s is string => s !== undefined),
  };
}

/** The variable each engine's own clients read the password from; the default for a bare URL. */
const ENGINE_PASSWORD_ENV: Record<Engine, string> = { postgres: 'PGPASSWORD', mysql: 'MYSQL_PWD', mariadb: 'MYSQL_PWD' };

export interface UrlPassword {
  /** The password to pass beside the URL; absent when the URL carries its own (or nothing is set). */
  password?: string;
  /** The secret in play, wherever it came from (variable or URL), for redaction lists. */
  secret?: string;
  /** The URL carries the password itself, where the process list and shell history show it. */
  inUrl: boolean;
  /** The engine's usual variable (PGPASSWORD / MYSQL_PWD), for messages. */
  engineEnv: string;
}

/**
 * The password for a URL given without a plan (`readonly`): the variable `passwordEnv` names (`key` is how the
 * caller calls that setting in messages), else the URL's own, else the engine's usual variable.
 */
export function resolveUrlPassword(url: string, env: NodeJS.ProcessEnv, passwordEnv?: { name: string; key: string }): UrlPassword {
  const engineEnv = ENGINE_PASSWORD_ENV[parseDbUrl(url).engine];
  if (passwordEnv) {
    const password = passwordFromEnv(env, passwordEnv.name, passwordEnv.key);
    return { password, secret: password, inUrl: false, engineEnv };
  }
  if (urlHasPassword(url)) {
    const secret = parseDbUrl(url).password;
    return { ...(secret !== undefined ? { secret } : {}), inUrl: true, engineEnv };
  }
  const password = env[engineEnv];
  return { ...(password !== undefined ? { password, secret: password } : {}), inUrl: false, engineEnv };
}
