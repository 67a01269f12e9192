import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/util/subprocess.js';
import { missing } from './availability.js';

export const opensslMissing = await missing('openssl', () => run('openssl', ['version']));

/** A server certificate and its key, signed by `ca`. */
export interface ServerCert {
  cert: string;
  key: string;
  ca: string;
}

/**
 * Test-time PKI under one temp dir, readable by every user (the servers' own users read the CA for their
 * replication links): two unrelated CAs, and server certificates signed by the first with the names asked for.
 */
export class TestPki {
  private constructor(readonly dir: string) {}

  get ca(): string {
    return join(this.dir, 'ca.crt');
  }
  /** A CA that signed nothing here: the "wrong CA" a client may be given. */
  get otherCa(): string {
    return join(this.dir, 'other-ca.crt');
  }

  static async create(): Promise<TestPki> {
    const dir = await mkdtemp(join(tmpdir(), 'cutover-pki-'));
    await chmod(dir, 0o755);
    const pki = new TestPki(dir);
    await pki.makeCa('ca', 'cutover test CA');
    await pki.makeCa('other-ca', 'cutover other CA');
    return pki;
  }

  private async makeCa(name: string, cn: string): Promise<void> {
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-sha256',
      '-days',
      '2',
      '-keyout',
      join(this.dir, `${name}.key`),
      '-out',
      join(this.dir, `${name}.crt`),
      '-subj',
      `/CN=${cn}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    await chmod(join(this.dir, `${name}.crt`), 0o644);
  }

  /**
   * A server certificate for `dns` names and `ips`, CN the first name. `days: 0` makes one that expires the
   * second it is issued.
   */
  async serverCert(name: string, opts: { dns?: string[]; ips?: string[]; days?: number } = {}): Promise<ServerCert> {
    const dns = opts.dns ?? ['localhost'];
    const ips = opts.ips ?? ['127.0.0.1'];
    const key = join(this.dir, `${name}.key`);
    const csr = join(this.dir, `${name}.csr`);
    const cert = join(this.dir, `${name}.crt`);
    const ext = join(this.dir, `${name}.ext`);
    const san = [...dns.map((d) => `DNS:${d}`), ...ips.map((i) => `IP:${i}`)].join(',');
    await writeFile(ext, `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
    await run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-keyout', key, '-out', csr, '-subj', `/CN=${dns[0] ?? ips[0]}`]);
    await run('openssl', ['x509', '-req', '-in', csr, '-CA', this.ca, '-CAkey', join(this.dir, 'ca.key'), '-CAcreateserial', '-out', cert, '-days', String(opts.days ?? 2), '-sha256', '-extfile', ext]);
    await chmod(cert, 0o644);
    await chmod(key, 0o644);
    return { cert, key, ca: this.ca };
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
