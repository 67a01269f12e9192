import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbSandbox } from '../../adapters/mysql/mariadb-sandbox.js';
import { PostgresSandbox } from '../../adapters/postgres/postgres-sandbox.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { ENGINES, envMissing } from '../helpers/cutover-env.js';
import { exec as mysqlExec } from '../helpers/mariadb.js';
import { exec } from '../helpers/pg.js';
import { TestPki, opensslMissing, type ServerCert } from '../helpers/tls-certs.js';

const DB = 'shop';
type Server = PostgresSandbox | MariadbSandbox;
type Role = 'src' | 'dst' | 'other';

/** A client that verifies the server against `ca` (the servers below refuse plaintext over TCP). */
async function pgTlsClient(sb: Server, password: string, ca: string, database = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ host: sb.host, port: sb.port, user: 'postgres', password, database, ssl: { ca: await readFile(ca, 'utf8'), rejectUnauthorized: true } });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** A root session that verifies the server against `ca` (plaintext TCP logins are refused below). */
async function mysqlTlsConnect(sb: Server, password: string, ca: string): Promise<mysql.Connection> {
  const c = await mysql.createConnection({ host: sb.host, port: sb.port, user: 'root', password, ssl: { ca: await readFile(ca, 'utf8'), rejectUnauthorized: true } });
  c.on('error', () => {});
  return c;
}

/**
 * What differs per engine: the servers, how plaintext is refused, and the URL's TLS words with their meaning
 * (libpq's sslmode / MySQL's ssl-mode) and the messages that name them.
 */
const ENGINE = {
  postgres: {
    title: 'PostgreSQL over TLS with libpq sslmode meaning',
    password: 'Tls-Secret-42',
    scheme: 'postgres://postgres',
    start: (role: Role, password: string, tls?: ServerCert): Promise<Server> =>
      PostgresSandbox.start({ major: role === 'dst' ? 17 : 15, password, ...(tls ? { tls } : {}), ...(role === 'src' ? { settings: { log_connections: 'on' } } : {}) }),
    createDb: (sb: Server) => exec(sb as PostgresSandbox, 'postgres', `CREATE DATABASE ${DB}`),
    seedSource: (sb: Server) => exec(sb as PostgresSandbox, DB, 'CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL)', `INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 2000) g`),
    /** Every TCP login without TLS is rejected, replication included: a child tool or link in plaintext would fail. */
    async refusePlaintext(sb: Server) {
      const s = sb as PostgresSandbox;
      const hba = join(s.dataDir, 'pg_hba.conf');
      const rest = await readFile(hba, 'utf8');
      await writeFile(hba, `hostnossl all all 0.0.0.0/0 reject\nhostnossl replication all 0.0.0.0/0 reject\n${rest}`);
      await exec(s, 'postgres', 'SELECT pg_reload_conf()');
    },
    full: (ca: string) => `sslmode=verify-full&sslrootcert=${encodeURIComponent(ca)}`,
    chainOnly: (ca: string) => `sslmode=verify-ca&sslrootcert=${encodeURIComponent(ca)}`,
    wrongCa: (otherCa: string) => `sslmode=verify-full&sslrootcert=${encodeURIComponent(otherCa)}`,
    wrongCaRefused: /TLS refused at PostgreSQL at 127\.0\.0\.1:\d+: the server certificate is not signed by the given CA/,
    require: 'sslmode=require',
    requireRefused: /does not offer TLS and the URL asks for require/,
    prefer: '',
    unknownMode: 'sslmode=verify_full',
    unknownModeRefused: /unknown sslmode "verify_full".*verify-ca, verify-full/s,
  },
  mariadb: {
    title: 'MariaDB over TLS with MySQL ssl-mode meaning',
    password: 'Tls-Secret-43',
    scheme: 'mariadb://root',
    start: (role: Role, password: string, tls?: ServerCert): Promise<Server> => MariadbSandbox.start({ password, ...(role === 'other' ? {} : { serverId: role === 'src' ? 1 : 2 }), ...(tls ? { tls } : {}) }),
    createDb: (sb: Server) => mysqlExec(sb as MariadbSandbox, `CREATE DATABASE ${DB}`),
    seedSource: (sb: Server) =>
      mysqlExec(
        sb as MariadbSandbox,
        `USE ${DB}`,
        'CREATE TABLE items (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL) ENGINE=InnoDB',
        `INSERT INTO items (name) SELECT CONCAT('item ', seq) FROM seq_1_to_2000`,
      ),
    /** From here on a TCP login without TLS is refused: a dump, load or replica link in plaintext would fail. */
    refusePlaintext: (sb: Server) => mysqlExec(sb as MariadbSandbox, 'SET GLOBAL require_secure_transport = ON'),
    full: (ca: string) => `ssl-mode=VERIFY_IDENTITY&ssl-ca=${encodeURIComponent(ca)}`,
    chainOnly: (ca: string) => `ssl-mode=VERIFY_CA&ssl-ca=${encodeURIComponent(ca)}`,
    wrongCa: (otherCa: string) => `ssl-mode=VERIFY_CA&ssl-ca=${encodeURIComponent(otherCa)}`,
    wrongCaRefused: /TLS refused at 127\.0\.0\.1:\d+: the server certificate is not signed by the given CA/,
    require: 'ssl-mode=REQUIRED',
    requireRefused: /does not offer TLS and the URL asks for REQUIRED/,
    prefer: 'ssl-mode=PREFERRED',
    unknownMode: 'ssl-mode=VERIFY_FULL',
    unknownModeRefused: /unknown ssl-mode "VERIFY_FULL".*VERIFY_IDENTITY/s,
  },
} as const;

describe.each(ENGINES)('%s', (engine) => {
  const E = ENGINE[engine];
  const PASSWORD = E.password;
  const url = (sb: Server, query: string) => `${E.scheme}@127.0.0.1:${sb.port}/${DB}?${query}`;
  const status = (u: string) => cli(['readonly', 'status', u, '--password-env', 'PW'], { PW: PASSWORD });

  describe.skipIf(envMissing(engine) ?? opensslMissing)(E.title, () => {
    let pki: TestPki;
    let full: ServerCert;
    let src: Server;
    let dst: Server;
    let localhostOnly: Server;
    let plain: Server;

    beforeAll(async () => {
      pki = await TestPki.create();
      full = await pki.serverCert('full', { dns: ['localhost'], ips: ['127.0.0.1'] });
      const lh = await pki.serverCert('localhost-only', { dns: ['localhost'], ips: [] });
      [src, dst, localhostOnly, plain] = await Promise.all([E.start('src', PASSWORD, full), E.start('dst', PASSWORD, full), E.start('other', PASSWORD, lh), E.start('other', PASSWORD)]);
      for (const sb of [localhostOnly, plain, src]) await E.createDb(sb);
      await E.seedSource(src);
      await Promise.all([E.refusePlaintext(src), E.refusePlaintext(dst)]);
    }, 180_000);
    afterAll(async () => {
      await Promise.all([src?.stop(), dst?.stop(), localhostOnly?.stop(), plain?.stop()]);
      await pki?.remove();
    });

    it('sync + run with full verification: the tool, its child tools and the replication link all connect over verified TLS', async () => {
      const stateDir = await tempStateDir(src.dir);
      const tls = E.full(pki.ca);
      const plan = join(stateDir, 'plan.yaml');
      await writeFile(
        plan,
        [
          `engine: ${engine}`,
          `source: { url: "${url(src, tls)}", passwordEnv: SRC_PW }`,
          `target: { url: "${url(dst, tls)}", passwordEnv: DST_PW }`,
          `scope: { databases: ["${DB}"] }`,
          ...(engine === 'postgres' ? ['method: replication'] : []),
          'limits: { maxWriteBlocked: 10s }',
          'router: { kind: none }',
          `state: "${stateDir}"`,
        ].join('\n'),
      );
      const env = { SRC_PW: PASSWORD, DST_PW: PASSWORD };
      const sync = await cli(['sync', plan], env);
      expect(sync.code, sync.err).toBe(0);

      if (engine === 'postgres') {
        // The replication link: the source's walsender for the subscription runs over TLS, and the target's catalog
        // carries the CA and the mode for it (the paths are read on the target's host).
        const s = await pgTlsClient(src, PASSWORD, pki.ca);
        const link = await s.query(`SELECT st.ssl, st.version FROM pg_stat_replication r JOIN pg_stat_ssl st USING (pid)`);
        await s.end();
        expect(link.rows.length).toBe(1);
        expect(link.rows[0].ssl).toBe(true);
        const d = await pgTlsClient(dst, PASSWORD, pki.ca);
        const sub = await d.query(`SELECT subconninfo FROM pg_subscription`);
        await d.end();
        expect(sub.rows[0].subconninfo).toContain(`sslmode='verify-full'`);
        expect(sub.rows[0].subconninfo).toContain(`sslrootcert='${pki.ca}'`);
      } else {
        const d = await mysqlTlsConnect(dst, PASSWORD, pki.ca);
        const [rows] = await d.query<mysql.RowDataPacket[]>('SHOW ALL SLAVES STATUS');
        const ours = rows.find((r) => String(r.Connection_name).startsWith('cutover_'))!;
        expect(ours).toMatchObject({ Slave_IO_Running: 'Yes', Master_SSL_Allowed: 'Yes', Master_SSL_CA_File: pki.ca, Master_SSL_Verify_Server_Cert: 'Yes' });
        const [cipher] = await d.query<mysql.RowDataPacket[]>(`SHOW SESSION STATUS LIKE 'Ssl_cipher'`);
        expect(String(cipher[0]!.Value)).not.toBe('');
        await d.end();
      }

      const run = await cli(['run', plan, '--yes', '--json'], env);
      expect(run.code, run.err).toBe(0);
      if (engine === 'postgres') {
        const t = await pgTlsClient(dst, PASSWORD, pki.ca, DB);
        const n = await t.query(`SELECT count(*)::int AS n FROM items`);
        await t.end();
        expect(n.rows[0].n).toBe(2000);
        // Every TCP login to the source was encrypted (plaintext ones are rejected by pg_hba and would show here).
        const log = await src.log();
        expect(log).not.toMatch(/no encryption/);
        expect(log).toMatch(/connection authorized: user=postgres database=shop.*SSL enabled/);
      } else {
        const t = await mysqlTlsConnect(dst, PASSWORD, pki.ca);
        const [n] = await t.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${DB}.items`);
        await t.end();
        expect(Number(n[0]!.n)).toBe(2000);
      }
    }, 180_000);

    it('wrong CA: exit 3 naming the reason, before any password is sent', async () => {
      const r = await status(url(src, E.wrongCa(pki.otherCa)));
      expect(r.code, r.err).toBe(3);
      expect(r.err).toMatch(E.wrongCaRefused);
      if (engine === 'postgres') expect(r.err.trim().split('\n').length).toBeLessThanOrEqual(2);
    });

    it('host name mismatch: full verification refuses 127.0.0.1 for a certificate naming only localhost, chain-only verification accepts it', async () => {
      const identity = await status(url(localhostOnly, E.full(pki.ca)));
      expect(identity.code, identity.err).toBe(3);
      expect(identity.err).toMatch(/host name mismatch/);
      const chain = await status(url(localhostOnly, E.chainOnly(pki.ca)));
      expect(chain.code, chain.err).toBe(0);
      if (engine === 'postgres') {
        // libpq's rule: require with a root certificate verifies the chain too.
        const requireWithCa = await status(url(localhostOnly, `sslmode=require&sslrootcert=${encodeURIComponent(pki.otherCa)}`));
        expect(requireWithCa.code, requireWithCa.err).toBe(3);
      }
    });

    if (engine === 'postgres') {
      it("an expired server certificate: exit 3 (replaces that server's certificate)", async () => {
        const expired = await pki.serverCert('expired', { days: 0 });
        await new Promise((r) => setTimeout(r, 1500));
        const key = join(localhostOnly.dir, 'server.key');
        const cert = join(localhostOnly.dir, 'server.crt');
        await writeFile(cert, await readFile(expired.cert));
        await writeFile(key, await readFile(expired.key));
        // The server reads its certificate files again on reload.
        await exec(localhostOnly as PostgresSandbox, 'postgres', 'SELECT pg_reload_conf()');
        const r = await status(url(localhostOnly, E.chainOnly(pki.ca)));
        expect(r.code, r.err).toBe(3);
        expect(r.err).toMatch(/expired/);
      });
    }

    it('a plaintext server when the URL requires TLS: exit 3; when it only prefers TLS it connects in plaintext', async () => {
      const r = await status(url(plain, E.require));
      expect(r.code, r.err).toBe(3);
      expect(r.err).toMatch(E.requireRefused);
      expect((await status(url(plain, E.prefer))).code).toBe(0);
    });

    it('an unknown TLS mode: exit 2 naming the allowed values', async () => {
      const r = await status(url(src, E.unknownMode));
      expect(r.code).toBe(2);
      expect(r.err).toMatch(E.unknownModeRefused);
    });
  });
});
