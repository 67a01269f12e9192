import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgBouncerAdmin } from '../../adapters/routers/pgbouncer-admin.js';
import { PreflightError } from '../../src/errors.js';
import { parseDbUrl } from '../../src/util/db-url.js';
import { pgbouncerMissing, PgBouncerSandbox } from '../helpers/pgbouncer.js';
import { TestPki, opensslMissing } from '../helpers/tls-certs.js';

describe.skipIf(pgbouncerMissing ?? opensslMissing)('PgBouncer admin console over TLS when router.admin asks for it', () => {
  let pki: TestPki;
  let bouncer: PgBouncerSandbox;

  beforeAll(async () => {
    pki = await TestPki.create();
    const cert = await pki.serverCert('bouncer', { dns: ['localhost'], ips: ['127.0.0.1'] });
    bouncer = await PgBouncerSandbox.start({
      databases: { shop: { host: '127.0.0.1', port: 1 } },
      users: {},
      settings: { client_tls_sslmode: 'allow', client_tls_cert_file: cert.cert, client_tls_key_file: cert.key },
    });
  }, 60_000);
  afterAll(async () => {
    await bouncer?.stop();
    await pki?.remove();
  });

  const admin = (query: string) => parseDbUrl(`${bouncer.adminUrl()}?${query}`, { password: bouncer.adminPassword });

  it('verify-full: the console session is TLS (SHOW CLIENTS names its TLS version)', async () => {
    const a = await PgBouncerAdmin.connect(admin(`sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.ca)}`));
    try {
      const clients = await a.command('SHOW CLIENTS');
      const mine = clients.filter((c) => c.database === 'pgbouncer');
      expect(mine.length).toBe(1);
      expect(String(mine[0]!.tls)).toMatch(/TLSv1\.[23]/);
    } finally {
      await a.close();
    }
  });

  it('a console certificate from another CA: exit 3 naming the reason', async () => {
    const e = await PgBouncerAdmin.connect(admin(`sslmode=verify-ca&sslrootcert=${encodeURIComponent(pki.otherCa)}`)).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(PreflightError);
    expect((e as PreflightError).code).toBe('tls');
    expect((e as Error).message).toMatch(/not signed by the given CA/);
  });

  it('sslmode=disable stays plaintext', async () => {
    const a = await PgBouncerAdmin.connect(admin('sslmode=disable'));
    try {
      const mine = (await a.command('SHOW CLIENTS')).filter((c) => c.database === 'pgbouncer');
      expect(String(mine[0]!.tls ?? '')).toBe('');
    } finally {
      await a.close();
    }
  });
});
