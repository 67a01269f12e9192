import { describe, expect, it } from 'vitest';
import { plaintextFallbackFinding } from '../../adapters/mysql/mysql-dump.js';
import { parseDbUrl } from '../../src/util/db-url.js';

const at = (mode: string) => parseDbUrl(`mariadb://app@db.example:3306/shop?ssl-mode=${mode}&ssl-ca=/etc/ca.pem`);

describe('a MariaDB dump/load client that could fall back to plaintext is reported', () => {
  it('warns for REQUIRED and VERIFY_CA with a MariaDB client, naming the client, the side and VERIFY_IDENTITY', () => {
    for (const mode of ['REQUIRED', 'VERIFY_CA']) {
      const f = plaintextFallbackFinding(at(mode), 'mariadb', 'mariadb-dump', 'source');
      expect(f?.severity).toBe('warning');
      expect(f?.check).toBe('tls');
      expect(f?.object).toBe('source (mariadb-dump)');
      expect(f?.message).toContain(mode);
      expect(f?.fix).toContain('VERIFY_IDENTITY');
    }
  });

  it('stays quiet for VERIFY_IDENTITY, PREFERRED, DISABLED, a MySQL client, and a Unix socket', () => {
    for (const mode of ['VERIFY_IDENTITY', 'PREFERRED', 'DISABLED']) expect(plaintextFallbackFinding(at(mode), 'mariadb', 'mariadb', 'target')).toBeUndefined();
    expect(plaintextFallbackFinding(at('REQUIRED'), 'mysql', 'mysqldump', 'source')).toBeUndefined();
    expect(plaintextFallbackFinding(parseDbUrl('mariadb://app@%2Frun%2Fmysqld%2Fmysqld.sock/shop?ssl-mode=REQUIRED'), 'mariadb', 'mariadb', 'target')).toBeUndefined();
  });
});
