import { REHEARSAL_ENGINES, rehearsalKitFor } from '../../src/rehearse/kits.js';
import { access, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_ENGINE, ENGINES, dialectFor, engineCapabilities, isEngine } from '../../adapters/registry.js';
import type { ReadOnlyScope } from '../../src/readonly/types.js';
import { canWatchLeaks, defaultReadOnlyScope } from '../../src/readonly/adapters.js';
import { parseDbUrl } from '../../src/util/db-url.js';
import { ROOT } from '../helpers/built-cli.js';

const SCOPES: ReadOnlyScope[] = ['database', 'server', 'role', 'schema'];

describe('dialect registry: one dialect per engine, loaded on first use', () => {
  it('knows the three engines, in the order plan errors list them, with postgres as the default', () => {
    expect(ENGINES).toEqual(['postgres', 'mysql', 'mariadb']);
    expect(DEFAULT_ENGINE).toBe('postgres');
    expect(ENGINES.every(isEngine)).toBe(true);
    // URL schemes that are not engine names resolve through the URL parser, not the registry.
    expect(isEngine('postgresql')).toBe(false);
    expect(isEngine('toString')).toBe(false);
  });

  it.each(ENGINES)('%s resolves to a dialect of that engine whose capabilities are the synchronous table', async (engine) => {
    const dialect = await dialectFor(engine);
    expect(dialect.engine).toBe(engine);
    expect(dialect.capabilities).toEqual(engineCapabilities(engine));
    for (const factory of ['connectCutover', 'connectReadOnly', 'queryTenants', 'runSqlTransform', 'transformCommandConnection'] as const) {
      expect(typeof dialect[factory]).toBe('function');
    }
  });

  it('PostgreSQL: every fence scope, schemas as scope and tenants, replication per tenant, keyless tables, the postgres maintenance database', () => {
    expect(engineCapabilities('postgres')).toEqual({
      readOnlyScopes: ['database', 'server', 'role', 'schema'],
      leakWatchScopes: ['database', 'server', 'role', 'schema'],
      schemaScope: true,
      tenantKinds: ['database', 'schema'],
      wavesNeedDump: false,
      waveStream: false,
      keylessTables: true,
      copiesAccounts: false,
      parallelCopy: true,
      verifyAfterSwitch: true,
      cdcSlots: true,
      reverseReplication: true,
      rolePasswords: true,
      urlEngines: ['postgres'],
      urlExample: 'postgres://app@10.0.0.1:5432/shop',
      passwordEnv: 'PGPASSWORD',
      product: 'PostgreSQL',
      targetAdminDatabase: 'postgres',
      rehearsal: { sandboxes: '15 → 18, PgBouncer', plans: true, tenants: true },
    });
  });

  it.each(['mysql', 'mariadb'] as const)('%s: server and schema fences, database tenants sharing one stream, accounts copied, parallel copy, a compare after the switch, either URL scheme', (engine) => {
    expect(engineCapabilities(engine)).toEqual({
      readOnlyScopes: ['server', 'schema'],
      leakWatchScopes: ['server', 'database', 'schema'],
      schemaScope: false,
      tenantKinds: ['database'],
      // A wave's tenants share one replication stream (MySQL: a channel, 8.0+).
      wavesNeedDump: false,
      waveStream: true,
      keylessTables: false,
      copiesAccounts: true,
      parallelCopy: true,
      verifyAfterSwitch: true,
      cdcSlots: false,
      reverseReplication: true,
      rolePasswords: false,
      urlEngines: ['mysql', 'mariadb'],
      urlExample: `${engine}://app@10.0.0.1:3306/shop`,
      passwordEnv: 'MYSQL_PWD',
      product: engine === 'mariadb' ? 'MariaDB' : 'MySQL',
      // MySQL 8 cannot run here: no sandboxes to rehearse on.
      ...(engine === 'mariadb' ? { rehearsal: { sandboxes: 'HAProxy', plans: false, tenants: false } } : {}),
    });
  });

  it('rehearsal kits come from the dialect: PostgreSQL and MariaDB have one, MySQL says which engines do', async () => {
    expect(REHEARSAL_ENGINES).toEqual(['postgres', 'mariadb']);
    expect((await rehearsalKitFor('postgres')).engine).toBe('postgres');
    expect((await rehearsalKitFor('mariadb')).engine).toBe('mariadb');
    await expect(rehearsalKitFor('mysql')).rejects.toThrow(/rehearse has no sandboxes for mysql/);
  });

  it('the leak check overlaps the catch-up exactly where it did when the engine was compared by name', () => {
    for (const engine of ENGINES) {
      for (const scope of SCOPES) expect(canWatchLeaks(engine, scope), `${engine} ${scope}`).toBe(engine === 'postgres' || scope !== 'role');
    }
  });

  it('readonly without --scope: a PostgreSQL URL naming a database fences that database, anything else the server', () => {
    expect(defaultReadOnlyScope('postgres', 'shop')).toBe('database');
    expect(defaultReadOnlyScope('postgres', undefined)).toBe('server');
    expect(defaultReadOnlyScope('mysql', 'shop')).toBe('server');
    expect(defaultReadOnlyScope('mariadb', 'shop')).toBe('server');
  });
});

describe('transform commands reach the target through env or a 0600 file, never argv', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cutover-dialect-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('PostgreSQL: libpq variables, writable despite the hold', async () => {
    const target = parseDbUrl('postgres://admin@10.0.0.2:5433/postgres', { password: 'pw-1' });
    const c = await (await dialectFor('postgres')).transformCommandConnection({ target, database: 'tenant_a', schema: 's1', dir });
    expect(c.env).toEqual({
      PGHOST: '10.0.0.2',
      PGPORT: '5433',
      PGUSER: 'admin',
      PGDATABASE: 'tenant_a',
      PGPASSWORD: 'pw-1',
      PGOPTIONS: '-c default_transaction_read_only=off -c cutover.writable=on',
    });
    await c.dispose();
  });

  it('MySQL/MariaDB: a 0600 client option file named by CUTOVER_MYSQL_DEFAULTS_FILE, removed by dispose', async () => {
    const target = parseDbUrl('mariadb://admin@10.0.0.2:3307/x', { password: 'pw"2' });
    const c = await (await dialectFor('mariadb')).transformCommandConnection({ target, database: 'tenant_a', dir });
    const file = c.env.CUTOVER_MYSQL_DEFAULTS_FILE!;
    expect(Object.keys(c.env)).toEqual(['CUTOVER_MYSQL_DEFAULTS_FILE']);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toContain('password="pw\\"2"');
    await c.dispose();
    await expect(access(file)).rejects.toThrow();
  });
});

/**
 * Loads the built registry in a fresh Node process and reports which drivers are in the CommonJS module cache
 * (pg and mysql2 are CommonJS packages: importing them from ESM puts them there) after each step.
 */
const PROBE = (registryUrl: string) => `
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const drivers = () => {
  const files = Object.keys(require.cache);
  return { pg: files.some((f) => f.includes('/node_modules/pg/')), mysql2: files.some((f) => f.includes('/node_modules/mysql2/')) };
};
const registry = await import(${JSON.stringify(registryUrl)});
const steps = {};
for (const engine of registry.ENGINES) registry.engineCapabilities(engine);
steps.capabilities = drivers();
await registry.dialectFor('postgres');
steps.postgres = drivers();
await registry.dialectFor('mariadb');
steps.mariadb = drivers();
console.log(JSON.stringify(steps));
`;

describe('a PostgreSQL plan never loads the MySQL driver', () => {
  const registry = join(ROOT, 'dist/adapters/registry.js');
  beforeAll(async () => {
    await access(registry).catch(() => execa('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT }));
  }, 120_000);

  it('capabilities load no driver; the postgres dialect loads pg only; mysql2 arrives with a MySQL-family dialect', async () => {
    const r = await execa('node', ['--input-type=module', '-e', PROBE(pathToFileURL(registry).href)], { cwd: ROOT });
    expect(JSON.parse(r.stdout)).toEqual({
      capabilities: { pg: false, mysql2: false },
      postgres: { pg: true, mysql2: false },
      // The probe's own control: the check sees mysql2 once something does load it.
      mariadb: { pg: true, mysql2: true },
    });
  }, 60_000);
});
