import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbSandbox } from '../../adapters/mysql/mariadb-sandbox.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { exec, mariadbMissing } from '../helpers/mariadb.js';
import { TestPki, opensslMissing, type ServerCert } from '../helpers/tls-certs.js';

const PASSWORD = 'Tls-Secret-43';
const DB = 'shop';

/** A root session that verifies the server against `ca` (plaintext TCP logins are refused below). */
async function tlsConnect(sb: MariadbSandbox, ca: string): Promise<mysql.Connection> {
  const c = await mysql.createConnection({ host: sb.host, port: sb.port, user: 'root', password: PASSWORD, ssl: { ca: await readFile(ca, 'utf8'), rejectUnauthorized: true } });
  c.on('error', () => {});
  return c;
}

function url(sb: MariadbSandbox, query: string): string {
  return `mariadb://root@127.0.0.1:${sb.port}/${DB}?${query}`;
}

describe.skipIf(mariadbMissing ?? opensslMissing)('MariaDB over TLS with MySQL ssl-mode meaning', () => {
  let pki: TestPki;
  let full: ServerCert;
  let src: MariadbSandbox;
  let dst: MariadbSandbox;
  let localhostOnly: MariadbSandbox;
  let plain: MariadbSandbox;

  beforeAll(async () => {
    pki = await TestPki.create();
    full = await pki.serverCert('full', { dns: ['localhost'], ips: ['127.0.0.1'] });
    const lh = await pki.serverCert('localhost-only', { dns: ['localhost'], ips: [] });
    [src, dst, localhostOnly, plain] = await Promise.all([
      MariadbSandbox.start({ password: PASSWORD, serverId: 1, tls: full }),
      MariadbSandbox.start({ password: PASSWORD, serverId: 2, tls: full }),
      MariadbSandbox.start({ password: PASSWORD, tls: lh }),
      MariadbSandbox.start({ password: PASSWORD }),
    ]);
    for (const sb of [localhostOnly, plain]) await exec(sb, `CREATE DATABASE ${DB}`);
    await exec(
      src,
      `CREATE DATABASE ${DB}`,
      `USE ${DB}`,
      'CREATE TABLE items (id bigint AUTO_INCREMENT PRIMARY KEY, name varchar(64) NOT NULL) ENGINE=InnoDB',
      `INSERT INTO items (name) SELECT CONCAT('item ', seq) FROM seq_1_to_2000`,
    );
    // From here on a TCP login without TLS is refused: a dump, load or replica link in plaintext would fail.
    for (const sb of [src, dst]) await exec(sb, 'SET GLOBAL require_secure_transport = ON');
  }, 180_000);
  afterAll(async () => {
    await Promise.all([src?.stop(), dst?.stop(), localhostOnly?.stop(), plain?.stop()]);
    await pki?.remove();
  });

  it('sync + run with VERIFY_IDENTITY: the tool, mariadb-dump/mariadb and the replica link all use verified TLS', async () => {
    const stateDir = await tempStateDir(src.dir);
    const tls = `ssl-mode=VERIFY_IDENTITY&ssl-ca=${encodeURIComponent(pki.ca)}`;
    const plan = join(stateDir, 'plan.yaml');
    await writeFile(
      plan,
      [
        'engine: mariadb',
        `source: { url: "${url(src, tls)}", passwordEnv: SRC_PW }`,
        `target: { url: "${url(dst, tls)}", passwordEnv: DST_PW }`,
        `scope: { databases: ["${DB}"] }`,
        'limits: { maxWriteBlocked: 10s }',
        'router: { kind: none }',
        `state: "${stateDir}"`,
      ].join('\n'),
    );
    const env = { SRC_PW: PASSWORD, DST_PW: PASSWORD };
    const sync = await cli(['sync', plan], env);
    expect(sync.code, sync.err).toBe(0);

    const d = await tlsConnect(dst, pki.ca);
    const [rows] = await d.query<mysql.RowDataPacket[]>('SHOW ALL SLAVES STATUS');
    const ours = rows.find((r) => String(r.Connection_name).startsWith('cutover_'))!;
    expect(ours).toMatchObject({ Slave_IO_Running: 'Yes', Master_SSL_Allowed: 'Yes', Master_SSL_CA_File: pki.ca, Master_SSL_Verify_Server_Cert: 'Yes' });
    const [cipher] = await d.query<mysql.RowDataPacket[]>(`SHOW SESSION STATUS LIKE 'Ssl_cipher'`);
    expect(String(cipher[0]!.Value)).not.toBe('');
    await d.end();

    const run = await cli(['run', plan, '--yes', '--json'], env);
    expect(run.code, run.err).toBe(0);
    const t = await tlsConnect(dst, pki.ca);
    const [n] = await t.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${DB}.items`);
    await t.end();
    expect(Number(n[0]!.n)).toBe(2000);
  }, 180_000);

  const status = (u: string) => cli(['readonly', 'status', u, '--password-env', 'PW'], { PW: PASSWORD });

  it('wrong CA: exit 3 naming the reason', async () => {
    const r = await status(url(src, `ssl-mode=VERIFY_CA&ssl-ca=${encodeURIComponent(pki.otherCa)}`));
    expect(r.code, r.err).toBe(3);
    expect(r.err).toMatch(/TLS refused at 127\.0\.0\.1:\d+: the server certificate is not signed by the given CA/);
  });

  it('host name mismatch: VERIFY_IDENTITY refuses 127.0.0.1 for a certificate naming only localhost, VERIFY_CA accepts it', async () => {
    const ca = encodeURIComponent(pki.ca);
    const identity = await status(url(localhostOnly, `ssl-mode=VERIFY_IDENTITY&ssl-ca=${ca}`));
    expect(identity.code, identity.err).toBe(3);
    expect(identity.err).toMatch(/host name mismatch/);
    const chain = await status(url(localhostOnly, `ssl-mode=VERIFY_CA&ssl-ca=${ca}`));
    expect(chain.code, chain.err).toBe(0);
  });

  it('a plaintext server with ssl-mode=REQUIRED: exit 3; PREFERRED connects in plaintext', async () => {
    const r = await status(url(plain, 'ssl-mode=REQUIRED'));
    expect(r.code, r.err).toBe(3);
    expect(r.err).toMatch(/does not offer TLS and the URL asks for REQUIRED/);
    expect((await status(url(plain, 'ssl-mode=PREFERRED'))).code).toBe(0);
  });

  it('an unknown ssl-mode: exit 2 naming the allowed values', async () => {
    const r = await status(url(src, 'ssl-mode=VERIFY_FULL'));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/unknown ssl-mode "VERIFY_FULL".*VERIFY_IDENTITY/s);
  });
});
