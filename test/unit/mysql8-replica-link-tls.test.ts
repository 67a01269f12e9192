import { describe, expect, it } from 'vitest';
import { detectFlavor } from '../../adapters/mysql/mysql-flavor.js';
import { changeSourceSql, plaintextLinkFinding } from '../../adapters/mysql/mysql-replication.js';

const mysql80 = detectFlavor('8.0.36', 'MySQL Community Server - GPL');
const mysql57 = detectFlavor('5.7.44-log', 'MySQL Community Server (GPL)');
const maria = detectFlavor('10.11.19-MariaDB-0+deb12u1-log', 'Debian 12');
const prefer = { mode: 'prefer' as const, verify: 'none' as const };
const src = { host: '10.0.0.1', port: 3306, user: 'cutover_repl_x', password: 'pw', tls: prefer };

describe('MySQL 8 replica link with the default PREFERRED', () => {
  it('asks for TLS (unverified) when the tool found the source offering it, never for the RSA key', () => {
    const c = changeSourceSql(mysql80, 'c1', { ...src, tlsNegotiated: true });
    expect(c.sql).toMatch(/SOURCE_SSL = 1, SOURCE_SSL_VERIFY_SERVER_CERT = 0 FOR CHANNEL 'c1'$/);
    expect(c.sql).not.toMatch(/PUBLIC_KEY/);
    expect(changeSourceSql(mysql80, 'c1', { ...src, tlsNegotiated: false }).sql).toMatch(/SOURCE_SSL = 0 FOR CHANNEL/);
  });

  it('is a preflight blocker when the link would be plaintext with the job account', () => {
    const f = plaintextLinkFinding(mysql80, { tls: prefer, tlsNegotiated: false }, false);
    expect(f?.severity).toBe('blocker');
    expect(f?.message).toContain('8.0.36');
    expect(f?.fix).toMatch(/REQUIRED/);
    expect(f?.fix).toMatch(/source\.replication/);
    expect(plaintextLinkFinding(mysql80, { tls: { mode: 'disable', verify: 'none' } }, false)?.severity).toBe('blocker');
  });

  it('is no blocker with TLS found, REQUIRED or stronger, an own replication account, MySQL 5.7 or MariaDB', () => {
    expect(plaintextLinkFinding(mysql80, { tls: prefer, tlsNegotiated: true }, false)).toBeUndefined();
    expect(plaintextLinkFinding(mysql80, { tls: { mode: 'require', verify: 'none' } }, false)).toBeUndefined();
    expect(plaintextLinkFinding(mysql80, { tls: prefer, tlsNegotiated: false }, true)).toBeUndefined();
    expect(plaintextLinkFinding(mysql57, { tls: prefer, tlsNegotiated: false }, false)).toBeUndefined();
    expect(plaintextLinkFinding(maria, { tls: prefer, tlsNegotiated: false }, false)).toBeUndefined();
  });
});
