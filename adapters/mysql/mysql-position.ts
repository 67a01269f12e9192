import type { RowDataPacket } from 'mysql2/promise';
import type { MysqlFlavor } from './mysql-flavor.js';
import type { Query } from './mysql-sessions.js';

/** Where the server's write history stands: the GTID set, and the binary log coordinates. */
export interface WritePosition {
  /** gtid_executed (MySQL) or gtid_binlog_pos (MariaDB), normalized; '' when GTIDs are off or nothing was logged. */
  gtid: string;
  /** Binary log file and offset; null when the binary log is off. */
  file: string | null;
  pos: number | null;
}

/**
 * Normalizes a GTID set so two readings compare as strings: MySQL wraps gtid_executed with newlines and
 * orders it by server UUID; MariaDB lists one `domain-server-seq` per domain.
 */
export function normalizeGtidSet(set: string | null | undefined): string {
  if (!set) return '';
  return set
    .replace(/\s+/g, '')
    .split(',')
    .filter(Boolean)
    .map((s) => s.toLowerCase())
    .sort()
    .join(',');
}

/** True when the position can show a write at all (GTIDs or a binary log). */
export function canTrackWrites(p: WritePosition): boolean {
  return p.gtid !== '' || p.file !== null;
}

/**
 * Did anything get written between two readings? GTIDs decide when there are any (a log rotation moves the
 * file and offset without a write); otherwise the binary log coordinates do.
 */
export function positionMoved(before: WritePosition, after: WritePosition): boolean {
  if (before.gtid !== '' || after.gtid !== '') return before.gtid !== after.gtid;
  if (before.file === null || after.file === null) return false;
  return before.file !== after.file || before.pos !== after.pos;
}

export function describePosition(p: WritePosition): string {
  if (p.gtid !== '') return `GTID ${p.gtid}`;
  if (p.file !== null) return `${p.file}:${p.pos}`;
  return 'no binary log';
}

/** The position as FenceOnResult.fencePosition carries it (a string the leak watch reads back). */
export function encodePosition(p: WritePosition): string {
  return p.gtid !== '' ? `gtid:${p.gtid}` : `binlog:${p.pos}:${p.file}`;
}

/** Undefined for a string encodePosition did not write. */
export function decodePosition(s: string): WritePosition | undefined {
  if (s.startsWith('gtid:')) return { gtid: s.slice(5), file: null, pos: null };
  const m = /^binlog:(\d+):(.+)$/.exec(s);
  return m ? { gtid: '', file: m[2]!, pos: Number(m[1]) } : undefined;
}

/** The server's current binary log file and offset (SHOW MASTER STATUS, MySQL 8.2+ SHOW BINARY LOG STATUS); undefined when the binary log is off. */
export async function binlogCoordinates(q: Query, f: Pick<MysqlFlavor, 'binlogStatusSql'>, doing = 'reading the binary log position'): Promise<{ file: string; pos: number } | undefined> {
  const [b] = await q<RowDataPacket & { File?: string; Position?: string | number }>(f.binlogStatusSql, [], doing);
  return b?.File ? { file: b.File, pos: Number(b.Position) } : undefined;
}
