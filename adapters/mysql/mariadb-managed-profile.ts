import mysql from 'mysql2/promise';
import type { MariadbSandbox } from './mariadb-sandbox.js';

/**
 * The managed test profile: an admin account shaped like a managed provider's (RDS for MariaDB, SkySQL-like)
 * "master user" on MariaDB 10.11. It can create accounts and grant, end other sessions, run and watch
 * replication, but holds none of SUPER, READ_ONLY ADMIN or SYSTEM VARIABLES-style rights: it cannot
 * `SET GLOBAL read_only`, and the server's own root can do what the provider's staff does.
 */
export const MANAGED_ADMIN_PRIVILEGES = [
  'SELECT',
  'INSERT',
  'UPDATE',
  'DELETE',
  'CREATE',
  'DROP',
  'RELOAD',
  'PROCESS',
  'REFERENCES',
  'INDEX',
  'ALTER',
  'SHOW DATABASES',
  'CREATE TEMPORARY TABLES',
  'LOCK TABLES',
  'EXECUTE',
  'REPLICATION SLAVE',
  'BINLOG MONITOR',
  'CREATE VIEW',
  'SHOW VIEW',
  'CREATE ROUTINE',
  'ALTER ROUTINE',
  'CREATE USER',
  'EVENT',
  'TRIGGER',
  'DELETE HISTORY',
  'CONNECTION ADMIN',
  'REPLICATION SLAVE ADMIN',
  'REPLICATION MASTER ADMIN',
  'SLAVE MONITOR',
] as const;

/** Global privileges the managed admin must not hold: each lets it set read_only or write through it. */
export const MANAGED_ADMIN_WITHOUT = ['SUPER', 'READ_ONLY ADMIN', 'BINLOG ADMIN'] as const;

export const MANAGED_ADMIN_USER = 'cutover_admin';

function sqlString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** The statements that create the managed admin (`user`@`%`) with exactly MANAGED_ADMIN_PRIVILEGES, WITH GRANT OPTION. */
export function managedAdminSql(user: string, password: string): string[] {
  const who = `${sqlString(user)}@'%'`;
  return [`CREATE USER ${who} IDENTIFIED BY ${sqlString(password)}`, `GRANT ${MANAGED_ADMIN_PRIVILEGES.join(', ')} ON *.* TO ${who} WITH GRANT OPTION`];
}

/** Creates the managed admin on a sandbox (as the sandbox's root) and returns how to log in as it. */
export async function createManagedAdmin(sb: MariadbSandbox, password: string, user = MANAGED_ADMIN_USER): Promise<{ user: string; password: string }> {
  const c = await mysql.createConnection({ host: sb.host, port: sb.port, user: 'root', password: sb.password });
  try {
    for (const sql of managedAdminSql(user, password)) await c.query(sql);
  } finally {
    await c.end();
  }
  return { user, password };
}
