import type { EngineCapabilities } from '../../src/engine/dialect.js';
import { withDefaults } from '../dialect-capabilities.js';

/**
 * Driver-free: the plan parser reads these without loading `mysql2`. MySQL and MariaDB differ only in the URL
 * they show; the server's own flavor (MysqlFlavor) decides the rest once connected.
 */
export function mysqlCapabilities(engine: 'mysql' | 'mariadb'): EngineCapabilities {
  return withDefaults({
    readOnlyScopes: ['server', 'schema'],
    // A database fence's check looks at that database's tables and binary log events, which the tool's
    // own dump does not touch; a server fence's check compares the server's write position from the fence to
    // the point of no return, and the cutover writes nothing to the source meanwhile. Role scope does not exist.
    leakWatchScopes: ['server', 'database', 'schema'],
    copiesAccounts: true,
    // Consistent-snapshot transactions at the point of no return on sessions opened before the hold.
    verifyAfterSwitch: true,
    // MariaDB to MariaDB and MySQL to MySQL 8.0+ copy in parallel at one GTID position (parallelCopyRefusal); a 5.7
    // target keeps the one-stream dump, except into the provider's replication procedures.
    parallelCopy: true,
    // A MariaDB server is often reached with a mysql:// URL, and the other way round.
    urlEngines: ['mysql', 'mariadb'],
    urlExample: `${engine}://app@10.0.0.1:3306/shop`,
    // The old source becomes a replica of the target from its GTID position at the switch (mysql-reverse.ts).
    reverseReplication: true,
    passwordEnv: 'MYSQL_PWD',
    // A wave's tenants share one named replica connection (MariaDB) or channel (MySQL 8.0+): its database filter
    // grows as each tenant joins at its copy's GTID position; the servers' flavors are checked when one joins.
    wavesNeedDump: false,
    waveStream: true,
    product: engine === 'mariadb' ? 'MariaDB' : 'MySQL',
    // MySQL 8 has no package on Debian: only MariaDB sandboxes can be started.
    ...(engine === 'mariadb' ? { rehearsal: { sandboxes: 'HAProxy', plans: false, tenants: false } } : {}),
  });
}
