// The benchmarks' one way to run setup statements on a sandbox as its superuser (one connection per call).
import mysql from 'mysql2/promise';
import pg from 'pg';

/** Runs `stmts` in order on database `db` of a PostgreSQL sandbox; returns the last result. */
export async function pgSql(sb, password, db, ...stmts) {
  const c = new pg.Client({ host: sb.host, port: sb.port, user: 'postgres', password, database: db });
  await c.connect();
  try {
    let last;
    for (const s of stmts) last = await c.query(s);
    return last;
  } finally {
    await c.end();
  }
}

/** Runs `stmts` in order on a MariaDB sandbox as root. */
export async function mariadbSql(sb, password, ...stmts) {
  const c = await mysql.createConnection({ host: sb.host, port: sb.port, user: 'root', password });
  try {
    for (const s of stmts) await c.query(s);
  } finally {
    await c.end();
  }
}
