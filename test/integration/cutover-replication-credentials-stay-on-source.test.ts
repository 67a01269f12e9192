import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbSandbox } from '../../adapters/mysql/mariadb-sandbox.js';
import { PostgresSandbox } from '../../adapters/postgres/postgres-sandbox.js';
import { cli, tempStateDir, type CliRun } from '../helpers/cli.js';
import { ENGINES, envMissing } from '../helpers/cutover-env.js';
import { connect, exec as mysqlExec } from '../helpers/mariadb.js';
import { client, exec } from '../helpers/pg.js';

const DB = 'creds';

/** Everything the tool wrote: CLI output and the state dir (journal, fence records). */
async function toolOutput(stateDir: string, runs: CliRun[]): Promise<string> {
  const parts = runs.flatMap((r) => [r.out, r.err]);
  for (const f of await readdir(stateDir)) parts.push(await readFile(join(stateDir, f), 'utf8').catch(() => ''));
  return parts.join('\n');
}

/** Every file the replica keeps its connection settings in (MariaDB: master-<connection>.info in the datadir). */
async function replicaInfoFiles(sb: MariadbSandbox): Promise<string> {
  const parts: string[] = [];
  for (const f of await readdir(sb.dataDir)) if (/\.info$/.test(f)) parts.push(await readFile(join(sb.dataDir, f), 'utf8'));
  return parts.join('\n');
}

async function rows(sb: MariadbSandbox, password: string, sql: string): Promise<mysql.RowDataPacket[]> {
  const c = await connect(sb, { password });
  try {
    const [r] = await c.query<mysql.RowDataPacket[]>(sql);
    return r;
  } finally {
    await c.end();
  }
}

// The engines keep the replication login in different places (pg_subscription / the replica's master.info), so
// each engine has its own walk through sync, rollback, cleanup, sync and run.
describe.each(ENGINES)('%s', (engine) => {
  if (engine === 'postgres') {
    describe.skipIf(envMissing(engine))('PostgreSQL: the subscription logs in with a short-lived replication role, never the admin account', () => {
      const SRC_PASSWORD = 'Src-Admin:Secret/71';
      const DST_PASSWORD = 'Dst-Admin:Secret/72';
      let src: PostgresSandbox;
      let dst: PostgresSandbox;
      const env = { SRC_PW: SRC_PASSWORD, DST_PW: DST_PASSWORD, REPL_PW: 'Own-Repl-Secret-73' };

      beforeAll(async () => {
        // Both servers log every statement: a password sent in a statement would show in their logs.
        [src, dst] = await Promise.all([
          PostgresSandbox.start({ major: 15, password: SRC_PASSWORD, settings: { log_statement: "'all'" } }),
          // And every statement's duration (pgBadger's setting): that logs its text too.
          PostgresSandbox.start({ major: 17, password: DST_PASSWORD, settings: { log_statement: "'all'", log_min_duration_statement: '0' } }),
        ]);
        for (const db of [DB, 'own']) {
          await exec(src, 'postgres', `CREATE DATABASE ${db}`);
          await exec(src, db, 'CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL)', `INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 500) g`);
        }
      }, 120_000);
      afterAll(async () => {
        await Promise.all([src?.stop(), dst?.stop()]);
      });

      async function planFor(db: string, extraSource = ''): Promise<{ plan: string; stateDir: string }> {
        const stateDir = await tempStateDir(src.dir);
        const plan = join(stateDir, 'plan.yaml');
        await writeFile(
          plan,
          [
            'engine: postgres',
            `source: { url: "postgres://postgres@127.0.0.1:${src.port}/${db}", passwordEnv: SRC_PW${extraSource} }`,
            `target: { url: "postgres://postgres@127.0.0.1:${dst.port}/${db}", passwordEnv: DST_PW }`,
            `scope: { databases: ["${db}"] }`,
            'limits: { maxWriteBlocked: 10s }',
            'router: { kind: none }',
            `state: "${stateDir}"`,
          ].join('\n'),
        );
        return { plan, stateDir };
      }

      async function subconninfo(): Promise<string[]> {
        const c = await client(dst, { password: DST_PASSWORD });
        const { rows } = await c.query<{ i: string }>('SELECT subconninfo AS i FROM pg_subscription');
        await c.end();
        return rows.map((r) => r.i);
      }

      async function roles(): Promise<string[]> {
        const c = await client(src, { password: SRC_PASSWORD });
        const { rows } = await c.query<{ r: string }>(`SELECT rolname AS r FROM pg_roles WHERE rolname LIKE 'cutover_repl_%'`);
        await c.end();
        return rows.map((r) => r.r);
      }

      it('after sync, rollback, rollback --cleanup, sync and run: no admin password in pg_subscription or the target log; the random one in no log or journal; the role is gone at the end', async () => {
        const { plan, stateDir } = await planFor(DB);
        const runs: CliRun[] = [];
        const step = async (argv: string[]) => {
          const r = await cli(argv, env);
          runs.push(r);
          expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(0);
          return r;
        };
        const adminAbsentOnTarget = async () => {
          for (const info of await subconninfo()) expect(info).not.toContain(SRC_PASSWORD);
          expect(await dst.log()).not.toContain(SRC_PASSWORD);
        };

        await step(['sync', plan]);
        const [info] = await subconninfo();
        expect(info).toMatch(/user='cutover_repl_[0-9a-f]{12}'/);
        const random = /password='([^']+)'/.exec(info!)![1]!;
        expect(random.length).toBeGreaterThanOrEqual(32);
        await adminAbsentOnTarget();
        // CREATE SUBSCRIPTION ran with every statement-text setting quieted for its session.
        expect(await dst.log()).toMatch(/LOG:  (statement|duration): /);
        expect(await dst.log()).not.toContain(random);
        const status = (await step(['status', plan, '--json'])).json();
        expect(status.leftovers.map((l: { kind: string }) => l.kind)).toContain('replication role');

        await step(['rollback', plan]);
        await adminAbsentOnTarget();
        await step(['rollback', plan, '--cleanup']);
        expect(await subconninfo()).toEqual([]);
        expect(await roles()).toEqual([]);

        // A fresh start for the second sync: the first copy stays on the target after a rollback.
        const d = await client(dst, { password: DST_PASSWORD });
        await d.query(`DROP DATABASE ${DB} WITH (FORCE)`);
        await d.end();
        await step(['sync', plan]);
        const second = /password='([^']+)'/.exec((await subconninfo())[0]!)![1]!;
        expect(second).not.toBe(random);
        await adminAbsentOnTarget();
        await step(['run', plan, '--yes', '--json']);
        await adminAbsentOnTarget();
        expect(await subconninfo()).toEqual([]);
        expect(await roles()).toEqual([]);
        expect((await step(['status', plan, '--json'])).json().leftovers).toEqual([]);
        const t = await client(dst, { database: DB, password: DST_PASSWORD });
        expect((await t.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(500);
        await t.end();

        // The generated passwords reach the target's catalog only: not the servers' statement logs (the source got a
        // SCRAM verifier, the target's CREATE SUBSCRIPTION ran unlogged), not the tool's output or journal.
        const everywhere = [await src.log(), await dst.log(), await toolOutput(stateDir, runs)];
        for (const text of everywhere) for (const pw of [random, second]) expect(text).not.toContain(pw);
        expect(await src.log()).toMatch(/CREATE ROLE "cutover_repl_[0-9a-f]{12}" LOGIN REPLICATION PASSWORD 'SCRAM-SHA-256\$4096:/);
      }, 240_000);

      it('source.replication names the account: the subscription uses it, cleanup leaves it alone', async () => {
        await exec(src, 'own', `CREATE ROLE repl_app LOGIN REPLICATION PASSWORD '${env.REPL_PW}'`, 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO repl_app');
        const { plan } = await planFor('own', ', replication: { user: repl_app, passwordEnv: REPL_PW }');
        // The tool schema appears at sync: give the account its tables as they are created.
        await exec(src, 'own', 'CREATE SCHEMA IF NOT EXISTS _cutover', 'ALTER DEFAULT PRIVILEGES IN SCHEMA _cutover GRANT SELECT ON TABLES TO repl_app', 'GRANT USAGE ON SCHEMA _cutover TO repl_app');
        const sync = await cli(['sync', plan], env);
        expect(sync.code, sync.err).toBe(0);
        const info = (await subconninfo()).find((i) => i.includes("dbname='own'"))!;
        expect(info).toContain(`user='repl_app'`);
        expect(info).not.toContain(SRC_PASSWORD);
        expect(await roles()).toEqual([]);
        const rb = await cli(['rollback', plan, '--cleanup'], env);
        expect(rb.code, rb.err).toBe(0);
        const c = await client(src, { password: SRC_PASSWORD });
        expect((await c.query(`SELECT 1 FROM pg_roles WHERE rolname = 'repl_app'`)).rows.length).toBe(1);
        await c.end();
      }, 120_000);
    });
  }

  if (engine === 'mariadb') {
    describe.skipIf(envMissing(engine))('MariaDB: the replica logs in with a short-lived replication account, never the admin account', () => {
      const SRC_PASSWORD = 'Src-Admin:Secret/81';
      const DST_PASSWORD = 'Dst-Admin:Secret/82';
      let src: MariadbSandbox;
      let dst: MariadbSandbox;
      const env = { SRC_PW: SRC_PASSWORD, DST_PW: DST_PASSWORD };
      // Both servers log every statement, in the general log and (long_query_time 0) the slow log: a password sent
      // in a statement would show there.
      const generalLog = { 'general-log': 1, 'general-log-file': 'general.log', 'slow-query-log': 1, 'slow-query-log-file': 'slow.log', 'long-query-time': 0 };

      beforeAll(async () => {
        [src, dst] = await Promise.all([MariadbSandbox.start({ password: SRC_PASSWORD, serverId: 1, settings: generalLog }), MariadbSandbox.start({ password: DST_PASSWORD, serverId: 2, settings: generalLog })]);
        await mysqlExec(
          src,
          `CREATE DATABASE ${DB}`,
          `USE ${DB}`,
          'CREATE TABLE items (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL)',
          `INSERT INTO items (name) SELECT CONCAT('item ', seq) FROM seq_1_to_500`,
        );
      }, 120_000);
      afterAll(async () => {
        await Promise.all([src?.stop(), dst?.stop()]);
      });

      it('after sync, rollback, rollback --cleanup, sync and run: the admin password is in no replica metadata or target log; the random one in no log or journal', async () => {
        const stateDir = await tempStateDir(src.dir);
        const plan = join(stateDir, 'plan.yaml');
        await writeFile(
          plan,
          [
            'engine: mariadb',
            `source: { url: "mariadb://root@127.0.0.1:${src.port}/${DB}", passwordEnv: SRC_PW }`,
            `target: { url: "mariadb://root@127.0.0.1:${dst.port}/${DB}", passwordEnv: DST_PW }`,
            `scope: { databases: ["${DB}"] }`,
            'limits: { maxWriteBlocked: 10s }',
            'router: { kind: none }',
            `state: "${stateDir}"`,
          ].join('\n'),
        );
        const runs: CliRun[] = [];
        const step = async (argv: string[]) => {
          const r = await cli(argv, env);
          runs.push(r);
          expect(r.code, `${argv.join(' ')}: ${r.err}`).toBe(0);
          return r;
        };
        const targetLogs = async () => [await dst.log(), await readFile(join(dst.dataDir, 'general.log'), 'utf8'), await readFile(join(dst.dataDir, 'slow.log'), 'utf8'), await replicaInfoFiles(dst)];
        const adminAbsentOnTarget = async () => {
          const status = await rows(dst, DST_PASSWORD, 'SHOW ALL SLAVES STATUS');
          expect(JSON.stringify(status)).not.toContain(SRC_PASSWORD);
          for (const text of await targetLogs()) expect(text).not.toContain(SRC_PASSWORD);
        };
        const accounts = async () => (await rows(src, SRC_PASSWORD, `SELECT User AS u FROM mysql.user WHERE User LIKE 'cutover\\_repl\\_%'`)).map((r) => String(r.u));
        const randomPassword = async () => {
          const info = await replicaInfoFiles(dst);
          const user = /^(cutover_repl_[0-9a-f]{12})$/m.exec(info)?.[1];
          expect(user).toBeDefined();
          // master.info: host, user, password on consecutive lines.
          const lines = info.split('\n');
          return lines[lines.indexOf(user!) + 1]!;
        };

        await step(['sync', plan]);
        const [replica] = (await rows(dst, DST_PASSWORD, 'SHOW ALL SLAVES STATUS')).filter((r) => String(r.Connection_name).startsWith('cutover_'));
        expect(replica).toMatchObject({ Slave_IO_Running: 'Yes', Master_User: expect.stringMatching(/^cutover_repl_[0-9a-f]{12}$/) });
        const first = await randomPassword();
        expect(first.length).toBeGreaterThanOrEqual(32);
        await adminAbsentOnTarget();
        const status = (await step(['status', plan, '--json'])).json();
        expect(status.leftovers.map((l: { kind: string }) => l.kind)).toEqual(['replica connection', 'replication account']);

        await step(['rollback', plan]);
        await adminAbsentOnTarget();
        await step(['rollback', plan, '--cleanup']);
        expect(await accounts()).toEqual([]);

        await mysqlExec(dst, `DROP DATABASE ${DB}`);
        await step(['sync', plan]);
        const second = await randomPassword();
        expect(second).not.toBe(first);
        await step(['run', plan, '--yes', '--json']);
        await adminAbsentOnTarget();
        expect(await accounts()).toEqual([]);
        expect((await step(['status', plan, '--json'])).json().leftovers).toEqual([]);
        expect(Number((await rows(dst, DST_PASSWORD, `SELECT COUNT(*) AS n FROM ${DB}.items`))[0]!.n)).toBe(500);

        // The generated passwords: not in the source's general or binary log (the account went in as a hash, outside the
        // binary log), not in the target's general log (CHANGE MASTER ran with sql_log_off), not in the tool's output.
        const srcGeneral = await readFile(join(src.dataDir, 'general.log'), 'utf8');
        expect(srcGeneral).toMatch(/CREATE OR REPLACE USER 'cutover_repl_[0-9a-f]{12}'@'%' IDENTIFIED BY PASSWORD '\*[0-9A-F]{40}'/);
        const binlogs = await rows(src, SRC_PASSWORD, 'SHOW BINLOG EVENTS');
        expect(JSON.stringify(binlogs)).not.toMatch(/cutover_repl_/);
        const dstSlow = await readFile(join(dst.dataDir, 'slow.log'), 'utf8');
        // The slow log got the tool's other statements: CHANGE MASTER ran with a session long_query_time it never reaches.
        expect(dstSlow).toMatch(/SHOW ALL SLAVES STATUS/);
        const everywhere = [srcGeneral, await src.log(), await dst.log(), await readFile(join(dst.dataDir, 'general.log'), 'utf8'), dstSlow, await toolOutput(stateDir, runs)];
        for (const text of everywhere) for (const pw of [first, second]) expect(text).not.toContain(pw);
      }, 240_000);
    });
  }
});
