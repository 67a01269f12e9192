import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MANAGED_ADMIN_USER } from '../../adapters/mysql/mariadb-managed-profile.js';
import { APP_USER, type MariadbEnv } from './cutover-env.js';

/**
 * A MariaDB plan run as the managed admin (its password in ADMIN_PW) through the env's HAProxy, with the strict
 * fence on the app account and a 10 s budget unless told otherwise; `extra` lines go last.
 */
export async function writeManagedAdminPlan(e: MariadbEnv, db: string, stateDir: string, o: { readOnly?: string; limits?: string; extra?: string } = {}): Promise<string> {
  const file = join(stateDir, `${db}.plan.yaml`);
  await writeFile(
    file,
    [
      'engine: mariadb',
      `source: { url: "mariadb://${MANAGED_ADMIN_USER}@127.0.0.1:${e.src.port}/${db}", passwordEnv: ADMIN_PW }`,
      `target: { url: "mariadb://${MANAGED_ADMIN_USER}@127.0.0.1:${e.dst.port}/${db}", passwordEnv: ADMIN_PW }`,
      `scope: { databases: ["${db}"] }`,
      o.readOnly ?? `readOnly: { scope: server, mode: strict, roles: [${APP_USER}], drainTimeout: 2s }`,
      o.limits ?? 'limits: { maxWriteBlocked: 10s }',
      `router: { kind: haproxy, socket: "${e.haproxy!.socket}", backend: ${e.haproxy!.backend}, server: ${e.haproxy!.serverName} }`,
      `state: "${stateDir}"`,
      o.extra ?? '',
    ].join('\n'),
  );
  return file;
}
