import type { RowDataPacket } from 'mysql2/promise';
import type { MysqlFlavor } from './mysql-flavor.js';
import type { Query } from './mysql-sessions.js';

/**
 * A stable name for one server instance: MySQL's server_uuid; MariaDB has none, so host name, port, server_id
 * and data directory together.
 */
export async function serverIdentity(q: Query, flavor: MysqlFlavor): Promise<string> {
  if (flavor.kind === 'mysql') {
    const rows = await q<RowDataPacket & { id: string }>(`SELECT @@server_uuid AS id`);
    if (rows[0]?.id) return `mysql:${rows[0].id}`;
  }
  const rows = await q<RowDataPacket & { h: string; p: string; s: string; d: string }>(`SELECT @@hostname AS h, @@port AS p, @@server_id AS s, @@datadir AS d`);
  const r = rows[0]!;
  return `${flavor.kind}:${r.h}:${r.p}:${r.s}:${r.d}`;
}
