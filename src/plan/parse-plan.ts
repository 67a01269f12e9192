import { DEFAULT_ENGINE, ENGINES, engineCapabilities, isEngine } from '../../adapters/registry.js';
import { hasSeveralStatements } from './single-statement.js';
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { Document, LineCounter, isMap, isScalar, parseDocument } from 'yaml';
import { PlanError, UsageError, isCutoverError, type PlanIssue } from '../errors.js';
import { LOCK_TIMEOUT_BOUNDS, READ_ONLY_DEFAULTS } from '../readonly/readonly.js';
import { isPostgresUrl, parseDbUrl, urlHasPassword, type Engine } from '../util/db-url.js';
import { Fields, PlanReader } from './plan-reader.js';
import { rememberUrlPassword } from './secrets.js';
import type { PlanDocument } from './plan-document.js';
import type { Plan, PlanCdc, PlanCopy, PlanEndpoint, PlanHooks, PlanReadOnly, PlanScope, PlanStateDb, PlanVerifyBefore, RouterConfig, RouterKind, VerifyAfterMode, VerifyMode } from './types.js';
import { checkWavesMethod, readWaves } from './parse-waves.js';
import { readTables } from './parse-tables.js';
import { readRoles } from './parse-roles.js';
import { envName } from './env-name.js';

export const PLAN_DEFAULTS = {
  method: 'replication',
  verify: 'none',
  verifyBefore: 'chunks',
  verifyChunkRows: 10_000,
  copySplitBytes: 256 * 1024 * 1024,
  maxWriteBlockedMs: 5_000,
  maxLagBeforeFenceBytes: 1024 ** 2,
  sequenceGap: 1000,
  execTimeoutMs: 30_000,
  stateDir: '.cutover',
  accounts: 'copy',
  privileges: 'auto',
} as const;

const TOP_KEYS = [
  'engine',
  'source',
  'target',
  'scope',
  'method',
  'readOnly',
  'limits',
  'verify',
  'sequences',
  'router',
  'hooks',
  'state',
  'waves',
  'accounts',
  'tables',
  'copy',
  'cdc',
  'reverse',
  'privileges',
  'roles',
] as const;
const ROUTER_KEYS: Record<RouterKind, readonly string[]> = {
  none: [],
  pgbouncer: ['admin', 'adminPasswordEnv', 'ini', 'database'],
  haproxy: ['socket', 'backend', 'server'],
  file: ['path', 'format'],
  exec: ['command', 'hold', 'release', 'timeout'],
};
const ROUTER_KINDS = Object.keys(ROUTER_KEYS) as RouterKind[];

/** Reads and validates a plan file. Every problem is reported as `file:line: key.path: what (fix)`. */
/** A plan is a page of settings (comments included); 10,000 tenant names fit in well under this. */
const MAX_PLAN_CHARS = 4 * 1024 * 1024;

export async function loadPlan(file: string): Promise<Plan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read plan file ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, 'check the path');
  }
  return parsePlan(text, file);
}

/**
 * Validates plan text, or a plan built as an object (the same checks and defaults; issues then name line 1).
 * `file` is the path as the operator gave it (relative paths in the plan resolve against its directory).
 */
export function parsePlan(input: string | PlanDocument, file: string): Plan {
  if (typeof input !== 'string') return validPlan(new Document(input), new LineCounter(), file);
  const text = input;
  // Checked before parsing: a YAML parser spends seconds on a file of many megabytes.
  if (text.length > MAX_PLAN_CHARS)
    throw new UsageError(
      `plan file ${file} is ${Math.round(text.length / 1024)} KB, more than the ${MAX_PLAN_CHARS / 1024 / 1024} MB a plan may be`,
      'list many tenants with a query instead: scope: { tenants: { query: "SELECT ..." } }',
    );
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new PlanError(
      file,
      doc.errors.map((e): PlanIssue => ({ line: Math.max(1, lines.linePos(e.pos[0]).line), path: '', message: `YAML syntax: ${e.message.split('\n')[0]}` })),
    );
  }
  return validPlan(doc, lines, file);
}

function validPlan(doc: Document, lines: LineCounter, file: string): Plan {
  const reader = new PlanReader(lines);
  const plan = readPlan(reader, doc.contents, resolve(file));
  if (reader.issues.length > 0 || !plan) {
    throw new PlanError(file, reader.issues.length ? reader.issues : [{ line: 1, path: '', message: 'invalid plan' }]);
  }
  return plan;
}

function readPlan(reader: PlanReader, root: Parameters<PlanReader['fields']>[0], absFile: string): Plan | undefined {
  if (!root || (isScalar(root) && root.value === null)) {
    reader.report(root, '', 'the plan is empty', 'start from the example in the README');
    return undefined;
  }
  const top = reader.fields(root, '', TOP_KEYS);
  if (!top) return undefined;
  const planDir = dirname(absFile);
  const warnings: string[] = [];

  const declared = top.oneOf('engine', ENGINES, DEFAULT_ENGINE);
  const sourceFields = requiredFields(top, 'source', ['url', 'passwordEnv', 'replication']);
  const targetFields = requiredFields(top, 'target', ['url', 'passwordEnv']);
  const engine = top.has('engine') ? declared : inferEngine(sourceFields);
  const source = sourceFields && engine ? withReplication(readEndpoint(sourceFields, engine, warnings), sourceFields) : undefined;
  const target = targetFields && engine ? readEndpoint(targetFields, engine, warnings) : undefined;
  if (source && target && targetFields && source.host === target.host && source.port === target.port && source.database === target.database) {
    targetFields.report('url', `is the same server and database as source.url (${source.host}:${source.port})`, 'point target at the new server');
  }

  const scope = readScope(top, source, engine);
  const method = top.oneOf('method', ['replication', 'dump'] as const, PLAN_DEFAULTS.method);
  const readOnly = engine ? readReadOnly(top, engine, scope) : undefined;
  const limitsFields = top.fields('limits', ['maxWriteBlocked', 'maxLagBeforeFence']);
  const maxWriteBlockedMs = limitsFields ? limitsFields.duration('maxWriteBlocked', PLAN_DEFAULTS.maxWriteBlockedMs, { min: 100, max: 30 * 60_000 }) : PLAN_DEFAULTS.maxWriteBlockedMs;
  const maxLagBeforeFenceBytes = limitsFields ? limitsFields.size('maxLagBeforeFence', PLAN_DEFAULTS.maxLagBeforeFenceBytes, { min: 0, max: 10 * 1024 ** 3 }) : PLAN_DEFAULTS.maxLagBeforeFenceBytes;
  const { verify, verifyBefore, verifyAfter } = readVerify(top, scope?.kind === 'tenants' ? 'none' : PLAN_DEFAULTS.verifyBefore, engine);
  const seqFields = top.fields('sequences', ['gap']);
  const gap = seqFields ? seqFields.integer('gap', PLAN_DEFAULTS.sequenceGap, { min: 0, max: 1_000_000_000 }) : PLAN_DEFAULTS.sequenceGap;
  const router = readRouter(top, planDir, source, warnings);
  const hooks = readHooks(top, planDir);
  const accounts = readAccounts(top, engine);
  const roles = readRoles(top, engine);
  const state = readState(top, planDir, warnings);
  const stateDir = state?.dir;
  const waves = readWaves(top, scope, { path: (p) => localPath(planDir, p), command: (argv) => localCommand(planDir, argv) });

  const tables = readTables(top, engine);
  const copy = readCopy(top, engine);
  const cdc = readCdc(top, engine, scope);
  const reverse = readReverse(top, engine, scope);
  const wavesFit = waves && engine && method ? checkWavesMethod(top, engine, method, reverse) : true;
  const privileges = top.oneOf('privileges', ['auto', 'superuser', 'managed'] as const, PLAN_DEFAULTS.privileges);

  if (!engine || !source || !target || !scope || !method || !readOnly || maxWriteBlockedMs === undefined || maxLagBeforeFenceBytes === undefined) return undefined;
  if (
    !verify ||
    !verifyBefore ||
    !verifyAfter ||
    gap === undefined ||
    !router ||
    !hooks ||
    !accounts ||
    !stateDir ||
    !privileges ||
    tables === null ||
    copy === null ||
    cdc === null ||
    roles === null ||
    waves === null ||
    !wavesFit ||
    reverse === undefined
  )
    return undefined;
  return {
    file: absFile,
    engine,
    source,
    target,
    scope,
    method,
    readOnly,
    limits: { maxWriteBlockedMs, maxLagBeforeFenceBytes },
    verify,
    verifyBefore: verifyBefore!,
    verifyAfter: verifyAfter!,
    sequences: { gap },
    router,
    hooks,
    accounts,
    ...(roles ? { roles } : {}),
    privileges,
    ...(waves ? { waves } : {}),
    ...(tables ? { tables } : {}),
    ...(copy ? { copy } : {}),
    ...(cdc ? { cdc } : {}),
    reverse,
    stateDir,
    ...(state?.db ? { stateDb: state.db } : {}),
    warnings,
  };
}

const IN_WINDOW = ['none', 'rowcounts', 'checksums'] as const;

/**
 * `verify: { before: chunks|none, inWindow: none|rowcounts|checksums, chunkRows, after: none|chunks }`. The older
 * scalar form keeps its meaning: that check inside the window and no online verify before the hold. Waves default
 * to no verify before the hold: each tenant's run sits in the waves' window gate, where it would hold up the others.
 */
function readVerify(top: Fields, defaultBefore: PlanVerifyBefore['mode'], engine: Engine | undefined): { verify?: VerifyMode; verifyBefore?: PlanVerifyBefore; verifyAfter?: VerifyAfterMode } {
  if (top.has('verify') && !isMap(top.valueNode('verify'))) {
    const verify = top.oneOf('verify', IN_WINDOW);
    return { ...(verify ? { verify } : {}), verifyBefore: { mode: 'none', chunkRows: PLAN_DEFAULTS.verifyChunkRows }, verifyAfter: 'none' };
  }
  const f = top.fields('verify', ['before', 'inWindow', 'chunkRows', 'after']);
  const verify = f ? f.oneOf('inWindow', IN_WINDOW, PLAN_DEFAULTS.verify) : PLAN_DEFAULTS.verify;
  const mode = f ? f.oneOf('before', ['chunks', 'none'] as const, defaultBefore) : defaultBefore;
  const chunkRows = f ? f.integer('chunkRows', PLAN_DEFAULTS.verifyChunkRows, { min: 1, max: 10_000_000 }) : PLAN_DEFAULTS.verifyChunkRows;
  let after = f ? f.oneOf('after', ['none', 'chunks'] as const, 'none') : 'none';
  if (after === 'chunks' && engine !== undefined && !engineCapabilities(engine).verifyAfterSwitch)
    after = f!.report('after', `chunks: ${engine} has no compare after the switch yet`, 'use verify.after: none (the verify before the hold still runs)');
  if (!verify || !mode || chunkRows === undefined || !after) return {};
  return { verify, verifyBefore: { mode, chunkRows }, verifyAfter: after };
}

function requiredFields(parent: Fields, key: string, keys: readonly string[]): Fields | undefined {
  if (!parent.has(key)) return parent.missing(key, `add ${key}: { url: ..., passwordEnv: ... }`);
  return parent.fields(key, keys);
}

function inferEngine(source: Fields | undefined): Engine | undefined {
  const url = source?.has('url') ? source.valueNode('url') : undefined;
  const scheme = isScalar(url) && typeof url.value === 'string' ? /^([a-z]+):/i.exec(url.value)?.[1]?.toLowerCase() : undefined;
  return scheme !== undefined && isEngine(scheme) ? scheme : DEFAULT_ENGINE;
}

function urlExample(engine: Engine): string {
  return `e.g. ${engineCapabilities(engine).urlExample}`;
}

/** Strips a password from a URL; the password is remembered beside `holder` for resolvePlanSecrets(). */
function withoutPassword(url: string, holder: object, path: string, hasEnv: boolean, warnings: string[]): string {
  if (!urlHasPassword(url)) return url;
  const u = new URL(url);
  const password = decodeURIComponent(u.password);
  u.password = '';
  if (hasEnv) {
    warnings.push(`${path} holds a password that is ignored because a passwordEnv is set; remove it from the plan file`);
  } else {
    rememberUrlPassword(holder, password);
    warnings.push(`${path} holds a password: anyone who can read the plan file can read it; move it to an environment variable named by passwordEnv`);
  }
  return u.toString();
}

function readEndpoint(f: Fields, engine: Engine, warnings: string[]): PlanEndpoint | undefined {
  const url = f.string('url', { required: true, fix: urlExample(engine) });
  const passwordEnv = f.has('passwordEnv') ? envName(f, 'passwordEnv') : undefined;
  if (url === undefined || (f.has('passwordEnv') && passwordEnv === undefined)) return undefined;
  let parsed;
  try {
    parsed = parseDbUrl(url);
  } catch (e) {
    if (!isCutoverError(e)) throw e;
    return f.report('url', e.message, e.hint);
  }
  if (!engineCapabilities(engine).urlEngines.includes(parsed.engine)) return f.report('url', `is a ${parsed.engine} URL but engine is ${engine}`, urlExample(engine));
  const endpoint: PlanEndpoint = {
    url: '',
    ...(passwordEnv !== undefined ? { passwordEnv } : {}),
    host: parsed.host,
    port: parsed.port,
    user: parsed.user,
    ...(parsed.database !== undefined ? { database: parsed.database } : {}),
  };
  endpoint.url = withoutPassword(url, endpoint, f.pathOf('url'), passwordEnv !== undefined, warnings);
  return endpoint;
}

/** source.replication: { user, passwordEnv }, both required when the key is there. */
function withReplication(endpoint: PlanEndpoint | undefined, f: Fields): PlanEndpoint | undefined {
  if (!f.has('replication')) return endpoint;
  const r = f.fields('replication', ['user', 'passwordEnv']);
  if (!r) return undefined;
  const user = r.string('user', { required: true, fix: 'the account the target replicates with (PostgreSQL: LOGIN REPLICATION; MySQL: REPLICATION SLAVE)' });
  const passwordEnv = r.has('passwordEnv') ? envName(r, 'passwordEnv') : r.missing('passwordEnv', 'the environment variable that holds its password');
  if (!endpoint || user === undefined || passwordEnv === undefined) return undefined;
  return { ...endpoint, replication: { user, passwordEnv } };
}

function readScope(top: Fields, source: PlanEndpoint | undefined, engine: Engine | undefined): PlanScope | undefined {
  const fix = 'e.g. scope: { databases: [shop] }';
  if (!top.has('scope')) {
    if (source?.database) return { kind: 'databases', names: [source.database] };
    // Without a parsed source its own error already explains the plan; a second one would mislead.
    return source ? top.missing('scope', fix) : undefined;
  }
  const f = top.fields('scope', ['databases', 'schemas', 'tenants']);
  if (!f) return undefined;
  const kinds = f.keys() as Array<PlanScope['kind']>;
  if (kinds.length !== 1) {
    return f.reader.report(f.node, f.path || 'scope', kinds.length === 0 ? 'names nothing' : `has ${kinds.join(' and ')}; give exactly one`, fix);
  }
  const kind = kinds[0]!;
  if (kind === 'schemas' && engine !== undefined && !engineCapabilities(engine).schemaScope) {
    return f.report('schemas', `moves schemas of one PostgreSQL database; on ${engine} a schema is a database`, 'use scope: { databases: [name] }');
  }
  if (kind === 'tenants' && isMap(f.valueNode('tenants'))) return readTenantsMap(f, engine);
  const names = f.stringList(kind, { fix });
  return names ? { kind, names } : undefined;
}

/**
 * `tenants: { query: ... }` lists tenant databases at run time; with `database: app` the tenants are schemas of
 * that database, listed (`schemas: [a, b]`) or queried (the query runs in that database).
 */
function readTenantsMap(scope: Fields, engine: Engine | undefined): PlanScope | undefined {
  const f = scope.fields('tenants', ['query', 'schemas', 'database']);
  if (!f) return undefined;
  const fix = 'e.g. tenants: { schemas: [t1, t2], database: app } or tenants: { query: "SELECT ...", database: app }';
  if (f.has('query') === f.has('schemas')) return f.reader.report(f.node, f.path, f.has('query') ? 'has query and schemas; give one' : 'needs query (or schemas with database)', fix);
  const database = f.string('database');
  if (f.has('database') && database === undefined) return undefined;
  if (f.has('schemas') && database === undefined) return f.missing('database', 'schema tenants live in one database: name it, e.g. database: app');
  if (database !== undefined && engine !== undefined && !engineCapabilities(engine).tenantKinds.includes('schema'))
    return f.report('database', `schema tenants are PostgreSQL only; on ${engine} each tenant is a database`, 'list the tenant databases: tenants: [a, b]');
  const at = database !== undefined ? { database } : {};
  if (f.has('query')) {
    const query = f.string('query', { required: true, fix: `a SELECT on the source returning one text column of ${database !== undefined ? 'schema' : 'database'} names` });
    if (query !== undefined && hasSeveralStatements(query))
      return f.report('query', 'holds more than one statement', 'one SELECT only: it runs in a read-only transaction that a second statement (e.g. after COMMIT;) would escape');
    return query === undefined ? undefined : { kind: 'tenants', names: [], query, ...at };
  }
  const names = f.stringList('schemas', { fix });
  return names ? { kind: 'tenants', names, ...at } : undefined;
}

function readReadOnly(top: Fields, engine: Engine, planScope: PlanScope | undefined): PlanReadOnly | undefined {
  const { readOnlyScopes: scopes, schemaScope } = engineCapabilities(engine);
  const defaults: PlanReadOnly = {
    // A schema move fences its schema: a database fence would stop every other schema's writers too.
    scope: planScope?.kind === 'schemas' ? 'schema' : scopes[0]!,
    mode: READ_ONLY_DEFAULTS.mode,
    drainTimeoutMs: READ_ONLY_DEFAULTS.drainTimeoutMs,
    lockTimeoutMs: READ_ONLY_DEFAULTS.lockTimeoutMs,
    terminate: 'all',
    roles: [],
  };
  if (!top.has('readOnly')) return defaults;
  const f = top.fields('readOnly', ['scope', 'name', 'mode', 'drainTimeout', 'lockTimeout', 'terminate', 'roles']);
  if (!f) return undefined;
  const scope = f.oneOf('scope', scopes, defaults.scope);
  const movesSchemas = planScope?.kind === 'schemas' || (planScope?.kind === 'tenants' && planScope.database !== undefined);
  if (schemaScope && scope === 'schema' && planScope && !movesSchemas) {
    return f.report('scope', 'schema fences one schema; it goes with scope.schemas (or schema tenants)', `use readOnly.scope database for scope ${planScope.kind}`);
  }
  const name = f.string('name');
  const mode = f.oneOf('mode', ['advisory', 'enforced', 'strict'] as const, defaults.mode);
  const drainTimeoutMs = f.duration('drainTimeout', defaults.drainTimeoutMs, { min: 0, max: 10 * 60_000 });
  const lockTimeoutMs = f.duration('lockTimeout', defaults.lockTimeoutMs, LOCK_TIMEOUT_BOUNDS);
  const terminate = f.oneOf('terminate', ['none', 'idle-in-transaction', 'all'] as const, defaults.terminate);
  const roles = f.stringList('roles') ?? (f.has('roles') ? undefined : []);
  if (mode === 'strict' && roles?.length === 0) f.missing('roles', 'strict mode locks out the listed application roles: name them');
  if (!scope || (f.has('name') && name === undefined) || !mode || drainTimeoutMs === undefined || lockTimeoutMs === undefined || !terminate || !roles) return undefined;
  if (mode === 'strict' && roles.length === 0) return undefined;
  return { scope, ...(name !== undefined ? { name } : {}), mode, drainTimeoutMs, lockTimeoutMs, terminate, roles };
}

function localPath(planDir: string, p: string): string {
  return isAbsolute(p) ? p : resolve(planDir, p);
}

/** A command's program resolves against the plan's directory when written as ./x or ../x; others go through PATH. */
function localCommand(planDir: string, argv: string[] | undefined): string[] | undefined {
  if (!argv) return undefined;
  const [program, ...args] = argv;
  return /^\.\.?\//.test(program!) ? [resolve(planDir, program!), ...args] : argv;
}

function readRouter(top: Fields, planDir: string, source: PlanEndpoint | undefined, warnings: string[]): RouterConfig | undefined {
  if (!top.has('router')) return { kind: 'none' };
  const node = top.valueNode('router');
  const kindNode = isMap(node) ? node.get('kind', true) : undefined;
  const kindValue = isScalar(kindNode) ? kindNode.value : undefined;
  const known = typeof kindValue === 'string' && (ROUTER_KINDS as string[]).includes(kindValue) ? (kindValue as RouterKind) : undefined;
  const keys = known ? ROUTER_KEYS[known] : [...new Set(Object.values(ROUTER_KEYS).flat())];
  const f = top.fields('router', ['kind', ...keys]);
  if (!f) return undefined;
  const kind = f.oneOf('kind', ROUTER_KINDS);
  switch (kind) {
    case undefined:
      return undefined;
    case 'none':
      return { kind };
    case 'pgbouncer': {
      const admin = f.string('admin', { required: true, fix: 'e.g. postgres://pgbouncer@127.0.0.1:6432/pgbouncer' });
      const adminPasswordEnv = f.has('adminPasswordEnv') ? envName(f, 'adminPasswordEnv') : undefined;
      const ini = f.string('ini', { required: true, fix: 'the path of pgbouncer.ini, e.g. /etc/pgbouncer/pgbouncer.ini' });
      const database = f.has('database') ? f.string('database') : source?.database;
      if (!f.has('database') && !database) f.missing('database', 'name the [databases] entry the applications use');
      if (admin === undefined || ini === undefined || database === undefined || (f.has('adminPasswordEnv') && adminPasswordEnv === undefined)) return undefined;
      let adminDb;
      try {
        const parsed = parseDbUrl(admin);
        if (!isPostgresUrl(parsed)) return f.report('admin', 'is not a postgres:// URL', 'e.g. postgres://pgbouncer@127.0.0.1:6432/pgbouncer');
        adminDb = parsed.database;
      } catch (e) {
        if (!isCutoverError(e)) throw e;
        return f.report('admin', e.message, e.hint);
      }
      if (adminDb !== 'pgbouncer') return f.report('admin', `names database "${adminDb ?? ''}", but the admin console is the database "pgbouncer"`, 'end the URL with /pgbouncer');
      const config = { kind, admin: '', ...(adminPasswordEnv !== undefined ? { adminPasswordEnv } : {}), ini: localPath(planDir, ini), database };
      config.admin = withoutPassword(admin, config, f.pathOf('admin'), adminPasswordEnv !== undefined, warnings);
      return config;
    }
    case 'haproxy': {
      const socket = f.string('socket', { required: true, fix: 'the admin socket path, e.g. /run/haproxy/admin.sock' });
      const backend = f.string('backend', { required: true });
      const server = f.string('server', { required: true });
      if (socket === undefined || backend === undefined || server === undefined) return undefined;
      return { kind, socket: localPath(planDir, socket), backend, server };
    }
    case 'file': {
      const path = f.string('path', { required: true, fix: 'the file your applications read the endpoint from' });
      const format = f.oneOf('format', ['json', 'env'] as const, 'json');
      if (path === undefined || !format) return undefined;
      return { kind, path: localPath(planDir, path), format };
    }
    case 'exec': {
      const command = localCommand(planDir, f.argv('command', { required: true }));
      const hold = localCommand(planDir, f.argv('hold'));
      const release = localCommand(planDir, f.argv('release'));
      const timeoutMs = f.duration('timeout', PLAN_DEFAULTS.execTimeoutMs, { min: 1000, max: 3_600_000 });
      if (!command || (f.has('hold') && !hold) || (f.has('release') && !release) || timeoutMs === undefined) return undefined;
      return { kind, command, ...(hold ? { hold } : {}), ...(release ? { release } : {}), timeoutMs };
    }
  }
}

function readHooks(top: Fields, planDir: string): PlanHooks | undefined {
  if (!top.has('hooks')) return {};
  const f = top.fields('hooks', ['beforeFence', 'afterSwitch']);
  if (!f) return undefined;
  const beforeFence = localCommand(planDir, f.argv('beforeFence'));
  const afterSwitch = localCommand(planDir, f.argv('afterSwitch'));
  if ((f.has('beforeFence') && !beforeFence) || (f.has('afterSwitch') && !afterSwitch)) return undefined;
  return { ...(beforeFence ? { beforeFence } : {}), ...(afterSwitch ? { afterSwitch } : {}) };
}

function readAccounts(top: Fields, engine: Engine | undefined): Plan['accounts'] | undefined {
  if (top.has('accounts') && engine !== undefined && !engineCapabilities(engine).copiesAccounts)
    return top.report('accounts', 'is for MySQL/MariaDB; PostgreSQL sync creates missing roles itself', 'remove accounts from the plan');
  return top.oneOf('accounts', ['copy', 'check', 'skip'] as const, PLAN_DEFAULTS.accounts);
}

/** `copy: { jobs, splitTablesLargerThan }`: the initial copy's workers and when a table is split into ranges. */
function readCopy(top: Fields, engine: Engine | undefined): PlanCopy | undefined | null {
  if (!top.has('copy')) return undefined;
  if (engine !== undefined && !engineCapabilities(engine).parallelCopy) return top.report('copy', `is for the parallel initial copy, which ${engine} does not have`, 'remove copy from the plan') ?? null;
  const f = top.fields('copy', ['jobs', 'splitTablesLargerThan']);
  if (!f) return null;
  const jobs = f.has('jobs') ? f.integer('jobs', 0, { min: 1, max: 64 }) : undefined;
  const split = f.has('splitTablesLargerThan') ? f.size('splitTablesLargerThan', PLAN_DEFAULTS.copySplitBytes, { min: 1024 * 1024, max: 1024 ** 4 }) : undefined;
  if ((f.has('jobs') && jobs === undefined) || (f.has('splitTablesLargerThan') && split === undefined)) return null;
  return { ...(jobs !== undefined ? { jobs } : {}), ...(split !== undefined ? { splitAboveBytes: split } : {}) };
}

/** PostgreSQL's slot names: lower-case letters, digits and underscores, at most 63. */
const SLOT_NAME = /^[a-z0-9_]{1,63}$/;

/** `cdc: { slots: [name, ...], plugin }`: CDC consumers' logical slots handed over at the switch. */
function readCdc(top: Fields, engine: Engine | undefined, scope: PlanScope | undefined): PlanCdc | undefined | null {
  if (!top.has('cdc')) return undefined;
  if (engine !== undefined && !engineCapabilities(engine).cdcSlots)
    return top.report('cdc', `hands over PostgreSQL logical replication slots; ${engine} consumers follow the binary log, which has no slots to move`, 'remove cdc from the plan') ?? null;
  if (scope && (scope.kind !== 'databases' || scope.names.length !== 1))
    return top.report('cdc', 'applies to a plan that moves one whole database (a logical slot decodes a whole database)', 'use scope: { databases: [name] } with one database, or remove cdc') ?? null;
  const f = top.fields('cdc', ['slots', 'plugin']);
  if (!f) return null;
  const slots = f.stringList('slots', { required: true, fix: 'e.g. cdc: { slots: [debezium_orders] }' });
  const plugin = f.has('plugin') ? f.string('plugin') : undefined;
  if (!slots || (f.has('plugin') && plugin === undefined)) return null;
  const bad = slots.find((s) => !SLOT_NAME.test(s));
  if (bad !== undefined) return f.report('slots', `"${bad}" is not a PostgreSQL replication slot name`, 'slot names hold lower-case letters, digits and underscores (at most 63)') ?? null;
  if (plugin !== undefined && !/^[A-Za-z0-9_.-]{1,63}$/.test(plugin))
    return f.report('plugin', `"${plugin}" is not an output plugin name`, "e.g. plugin: pgoutput, or leave it out to use each source slot's plugin") ?? null;
  return { slots, ...(plugin !== undefined ? { plugin } : {}) };
}

/**
 * `reverse: true|false`: after the point of no return the old source follows the new primary, so `cutover revert`
 * can go back without losing writes. Default on where the engine has it and one database moves (what a change
 * board expects of a cutover it can undo). Database tenants of a wave may opt in (each tenant its own reverse
 * path, reverted alone with `cutover revert --tenant`): off by default, as every tenant's path keeps a slot and its
 * WAL on the target until `cutover finalize --tenant`. Schemas and schema tenants have none.
 */
function readReverse(top: Fields, engine: Engine | undefined, scope: PlanScope | undefined): boolean | undefined {
  const supported = engine !== undefined && engineCapabilities(engine).reverseReplication;
  const oneDatabase = scope?.kind === 'databases';
  const databaseTenants = scope?.kind === 'tenants' && scope.database === undefined;
  const want = top.boolean('reverse', supported && oneDatabase);
  if (want === undefined) return undefined;
  if (want && engine !== undefined && !supported) return top.report('reverse', `reverse replication is not supported for ${engine} yet`, 'remove reverse from the plan or set reverse: false');
  if (want && scope !== undefined && !oneDatabase && !databaseTenants)
    return top.report(
      'reverse',
      `reverse replication follows whole databases (scope.databases, or database tenants); scope ${scope.kind === 'tenants' ? 'tenants of one database (schemas)' : scope.kind} has none`,
      'remove reverse from the plan',
    );
  return want;
}

/**
 * `state: ./dir` (the default), `state: postgres://user@host/db` (a control database the runners share: journals,
 * locks and the wave's tenants in tables there) or `state: { url, passwordEnv, dir }`. With a control database the
 * local dir still holds what only this machine uses (test hooks, `readonly` fence records).
 */
function readState(top: Fields, planDir: string, warnings: string[]): { dir: string; db?: PlanStateDb } | undefined {
  const fix = 'use a directory (e.g. ./.cutover/) or a control database: state: { url: postgres://cutover@ctl-host/cutover, passwordEnv: CTL_PASSWORD }';
  if (top.has('state') && isMap(top.valueNode('state'))) {
    const f = top.fields('state', ['url', 'passwordEnv', 'dir']);
    if (!f) return undefined;
    const url = f.string('url', { required: true, fix });
    const passwordEnv = f.has('passwordEnv') ? envName(f, 'passwordEnv') : undefined;
    const dir = f.has('dir') ? f.string('dir') : PLAN_DEFAULTS.stateDir;
    if (url === undefined || dir === undefined || (f.has('passwordEnv') && passwordEnv === undefined)) return undefined;
    const db = readStateDb(f, 'url', url, passwordEnv, warnings);
    return db ? { dir: localPath(planDir, dir), db } : undefined;
  }
  const dir = top.has('state') ? top.string('state') : PLAN_DEFAULTS.stateDir;
  if (dir === undefined) return undefined;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(dir)) {
    const db = readStateDb(top, 'state', dir, undefined, warnings);
    return db ? { dir: localPath(planDir, PLAN_DEFAULTS.stateDir), db } : undefined;
  }
  return { dir: localPath(planDir, dir) };
}

function readStateDb(f: Fields, key: string, url: string, passwordEnv: string | undefined, warnings: string[]): PlanStateDb | undefined {
  if (!/^postgres(ql)?:\/\//i.test(url)) return f.report(key, 'a control database must be PostgreSQL (postgres://...)', 'e.g. state: { url: postgres://cutover@ctl-host/cutover, passwordEnv: CTL_PASSWORD }');
  try {
    parseDbUrl(url);
  } catch (e) {
    return f.report(key, `is not a valid URL (${e instanceof Error ? e.message : String(e)})`, 'e.g. postgres://cutover@ctl-host:5432/cutover');
  }
  const db: PlanStateDb = { url, ...(passwordEnv !== undefined ? { passwordEnv } : {}) };
  db.url = withoutPassword(url, db, key === 'state' ? 'state' : 'state.url', passwordEnv !== undefined, warnings);
  return db;
}
