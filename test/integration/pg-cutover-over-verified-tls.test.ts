import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresSandbox } from '../../adapters/postgres/postgres-sandbox.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { exec, pg15Missing, pg17Missing } from '../helpers/pg.js';
import { TestPki, opensslMissing, type ServerCert } from '../helpers/tls-certs.js';

const PASSWORD = 'Tls-Secret-42';
const DB = 'shop';

/** A client that verifies the server against `ca` (the servers below refuse plaintext over TCP). */
async function tlsClient(sb: PostgresSandbox, ca: string, database = 'postgres'): Promise<pg.Client> {
  const c = new pg.Client({ host: sb.host, port: sb.port, user: 'postgres', password: PASSWORD, database, ssl: { ca: await readFile(ca, 'utf8'), rejectUnauthorized: true } });
  c.on('error', () => {});
  await c.connect();
  return c;
}

/** Every TCP login without TLS is rejected, replication included: a child tool or link in plaintext would fail. */
async function refusePlaintext(sb: PostgresSandbox): Promise<void> {
  const hba = join(sb.dataDir, 'pg_hba.conf');
  const rest = await readFile(hba, 'utf8');
  await writeFile(hba, `hostnossl all all 0.0.0.0/0 reject\nhostnossl replication all 0.0.0.0/0 reject\n${rest}`);
  await exec(sb, 'postgres', 'SELECT pg_reload_conf()');
}

function url(sb: PostgresSandbox, query: string, host = '127.0.0.1'): string {
  return `postgres://postgres@${host}:${sb.port}/${DB}?${query}`;
}

describe.skipIf(pg15Missing ?? pg17Missing ?? opensslMissing)('PostgreSQL over TLS with libpq sslmode meaning', () => {
  let pki: TestPki;
  let full: ServerCert;
  let src: PostgresSandbox;
  let dst: PostgresSandbox;
  let localhostOnly: PostgresSandbox;
  let plain: PostgresSandbox;

  beforeAll(async () => {
    pki = await TestPki.create();
    full = await pki.serverCert('full', { dns: ['localhost'], ips: ['127.0.0.1'] });
    const lh = await pki.serverCert('localhost-only', { dns: ['localhost'], ips: [] });
    [src, dst, localhostOnly, plain] = await Promise.all([
      PostgresSandbox.start({ major: 15, password: PASSWORD, tls: full, settings: { log_connections: 'on' } }),
      PostgresSandbox.start({ major: 17, password: PASSWORD, tls: full }),
      PostgresSandbox.start({ major: 15, password: PASSWORD, tls: lh }),
      PostgresSandbox.start({ major: 15, password: PASSWORD }),
    ]);
    for (const sb of [localhostOnly, plain]) await exec(sb, 'postgres', `CREATE DATABASE ${DB}`);
    await exec(src, 'postgres', `CREATE DATABASE ${DB}`);
    await exec(src, DB, 'CREATE TABLE items (id bigserial PRIMARY KEY, name text NOT NULL)', `INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 2000) g`);
    await Promise.all([refusePlaintext(src), refusePlaintext(dst)]);
  }, 180_000);
  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop(), localhostOnly?.stop(), plain?.stop()]);
    await pki?.remove();
  });

  it('sync + run with verify-full: the tool, pg_dump/psql and the subscription all connect over verified TLS', async () => {
    const stateDir = await tempStateDir(src.dir);
    const tls = `sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.ca)}`;
    const plan = join(stateDir, 'plan.yaml');
    await writeFile(
      plan,
      [
        'engine: postgres',
        `source: { url: "${url(src, tls)}", passwordEnv: SRC_PW }`,
        `target: { url: "${url(dst, tls)}", passwordEnv: DST_PW }`,
        `scope: { databases: ["${DB}"] }`,
        'method: replication',
        'limits: { maxWriteBlocked: 10s }',
        'router: { kind: none }',
        `state: "${stateDir}"`,
      ].join('\n'),
    );
    const env = { SRC_PW: PASSWORD, DST_PW: PASSWORD };
    const sync = await cli(['sync', plan], env);
    expect(sync.code, sync.err).toBe(0);

    // The replication link: the source's walsender for the subscription runs over TLS, and the target's catalog
    // carries the CA and the mode for it (the paths are read on the target's host).
    const s = await tlsClient(src, pki.ca);
    const link = await s.query(`SELECT st.ssl, st.version FROM pg_stat_replication r JOIN pg_stat_ssl st USING (pid)`);
    await s.end();
    expect(link.rows.length).toBe(1);
    expect(link.rows[0].ssl).toBe(true);
    const d = await tlsClient(dst, pki.ca);
    const sub = await d.query(`SELECT subconninfo FROM pg_subscription`);
    await d.end();
    expect(sub.rows[0].subconninfo).toContain(`sslmode='verify-full'`);
    expect(sub.rows[0].subconninfo).toContain(`sslrootcert='${pki.ca}'`);

    const run = await cli(['run', plan, '--yes', '--json'], env);
    expect(run.code, run.err).toBe(0);
    const t = await tlsClient(dst, pki.ca, DB);
    const n = await t.query(`SELECT count(*)::int AS n FROM items`);
    await t.end();
    expect(n.rows[0].n).toBe(2000);
    // Every TCP login to the source was encrypted (plaintext ones are rejected by pg_hba and would show here).
    const log = await src.log();
    expect(log).not.toMatch(/no encryption/);
    expect(log).toMatch(/connection authorized: user=postgres database=shop.*SSL enabled/);
  }, 180_000);

  const status = (u: string) => cli(['readonly', 'status', u, '--password-env', 'PW'], { PW: PASSWORD });

  it('wrong CA: exit 3 naming the reason, before any password is sent', async () => {
    const r = await status(url(src, `sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.otherCa)}`));
    expect(r.code, r.err).toBe(3);
    expect(r.err).toMatch(/TLS refused at PostgreSQL at 127\.0\.0\.1:\d+: the server certificate is not signed by the given CA/);
    expect(r.err.trim().split('\n').length).toBeLessThanOrEqual(2);
  });

  it('host name mismatch: verify-full refuses 127.0.0.1 for a certificate naming only localhost, verify-ca accepts it', async () => {
    const ca = encodeURIComponent(pki.ca);
    const full = await status(url(localhostOnly, `sslmode=verify-full&sslrootcert=${ca}`));
    expect(full.code, full.err).toBe(3);
    expect(full.err).toMatch(/host name mismatch/);
    const chain = await status(url(localhostOnly, `sslmode=verify-ca&sslrootcert=${ca}`));
    expect(chain.code, chain.err).toBe(0);
    // libpq's rule: require with a root certificate verifies the chain too.
    const requireWithCa = await status(url(localhostOnly, `sslmode=require&sslrootcert=${encodeURIComponent(pki.otherCa)}`));
    expect(requireWithCa.code, requireWithCa.err).toBe(3);
  });

  it("an expired server certificate: exit 3 (replaces that server's certificate)", async () => {
    const expired = await pki.serverCert('expired', { days: 0 });
    await new Promise((r) => setTimeout(r, 1500));
    const key = join(localhostOnly.dir, 'server.key');
    const cert = join(localhostOnly.dir, 'server.crt');
    await writeFile(cert, await readFile(expired.cert));
    await writeFile(key, await readFile(expired.key));
    // The server reads its certificate files again on reload.
    await exec(localhostOnly, 'postgres', 'SELECT pg_reload_conf()');
    const r = await status(url(localhostOnly, `sslmode=verify-ca&sslrootcert=${encodeURIComponent(pki.ca)}`));
    expect(r.code, r.err).toBe(3);
    expect(r.err).toMatch(/expired/);
  });

  it('a plaintext server with sslmode=require: exit 3; with the default prefer it connects in plaintext', async () => {
    const r = await status(url(plain, 'sslmode=require'));
    expect(r.code, r.err).toBe(3);
    expect(r.err).toMatch(/does not offer TLS and the URL asks for require/);
    expect((await status(url(plain, ''))).code).toBe(0);
  });

  it('an unknown sslmode such as verify_full: exit 2 naming the allowed values', async () => {
    const r = await status(url(src, 'sslmode=verify_full'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown sslmode "verify_full".*verify-ca, verify-full/s);
  });
});
