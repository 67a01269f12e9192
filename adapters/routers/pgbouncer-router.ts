import { readFile, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { OperationError, UsageError } from '../../src/errors.js';
import type { Endpoint, Router, RouterFinding, RouterLogin } from '../../src/engine/router.js';
import { fsyncDir, stageFileAtomic, sweepStaleStagedFiles, type StagedFile } from '../../src/util/atomic-file.js';
import { parseDbUrl, type DbEndpoint } from '../../src/util/db-url.js';
import { formatDuration } from '../../src/util/units.js';
import { PgBouncerAdmin, quoteAdminIdent, type AdminRow } from './pgbouncer-admin.js';
import { readDatabaseEntry, readEntryLogin, rewriteDatabaseEntry } from './pgbouncer-ini.js';
import { parseUserlist } from './pgbouncer-userlist.js';

interface StagedIni {
  /** The ini text the staged one was made from. */
  base: string;
  next: string;
  /** Absent when the ini already routes there. */
  file?: StagedFile;
}

function endpointKey(e: Endpoint): string {
  return `${e.host}\0${e.port}\0${e.database ?? ''}`;
}

/** RESUME of a database that is not paused: a resumed run, or a router that was never held. Nothing to undo. */
function isNotPaused(e: unknown): boolean {
  return e instanceof Error && /is not paused/i.test(e.message);
}

export interface PgBouncerRouterOptions {
  /** Admin console URL (database `pgbouncer`); its password, if any, is overridden by `adminPassword`. */
  admin: string;
  adminPassword?: string;
  /** pgbouncer.ini path; cutover rewrites its `[databases]` entry. */
  ini: string;
  /** The `[databases]` entry the applications use. */
  database: string;
  connectTimeoutMs?: number;
}

/**
 * Holds with `PAUSE db`, moves with an ini rewrite + `RELOAD` (checked with `SHOW DATABASES`), releases with
 * `RESUME db`. PAUSE waits for running transactions, so it is bounded, and a timed-out PAUSE is undone.
 */
export class PgBouncerRouter implements Router {
  readonly kind = 'pgbouncer' as const;
  private readonly endpoint: DbEndpoint;
  private readonly quoted: string;
  private admin: PgBouncerAdmin | undefined;

  constructor(private readonly opts: PgBouncerRouterOptions) {
    this.endpoint = parseDbUrl(opts.admin, opts.adminPassword !== undefined ? { password: opts.adminPassword } : {});
    this.quoted = quoteAdminIdent(opts.database);
  }

  describe(): string {
    return `pgbouncer ${this.endpoint.host}:${this.endpoint.port} database "${this.opts.database}" (${this.opts.ini})`;
  }

  private connect(): Promise<PgBouncerAdmin> {
    return PgBouncerAdmin.connect(this.endpoint, this.opts.connectTimeoutMs);
  }

  private async console(): Promise<PgBouncerAdmin> {
    this.admin ??= await PgBouncerAdmin.connect(this.endpoint, this.opts.connectTimeoutMs, { pipelined: true });
    return this.admin;
  }

  /** The PAUSE's own connection, opened ahead of the hold. */
  private pauser: PgBouncerAdmin | undefined;

  async prepareHold(): Promise<void> {
    this.pauser ??= await this.connect();
  }

  async hold(timeoutMs: number): Promise<void> {
    // PAUSE runs on its own connection: if it outlives the timeout that connection is thrown away, because
    // a PAUSE still waiting when RESUME arrives never returns (pgbouncer#715). One hold per preparation.
    const pauser = this.pauser ?? (await this.connect());
    this.pauser = undefined;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
      const pause = this.waitForServerLogins(pauser, timeoutMs / 2).then(() => pauser.command(`PAUSE ${this.quoted}`));
      const outcome = await Promise.race([pause.then(() => 'paused' as const), timedOut]);
      if (outcome === 'paused') return;
      await this.release();
      throw new OperationError(
        `PgBouncer could not pause "${this.opts.database}" within ${formatDuration(timeoutMs)}: a transaction through it is still running; resumed it`,
        'PAUSE waits for running transactions: find long ones in SHOW SERVERS / pg_stat_activity, or raise limits.maxWriteBlocked',
      );
    } catch (e) {
      if (e instanceof Error && /already paused|is paused/i.test(e.message)) return;
      throw e;
    } finally {
      clearTimeout(timer);
      // Off the critical path: ending it changes nothing the clients wait for.
      void pauser.close().catch(() => {});
    }
  }

  /**
   * PAUSE closes the pool's server connections that are still logging in, and PgBouncer (1.18, pgbouncer#420)
   * counts each as a failed login: until a later login succeeds (server_login_retry, 15 s by default) queries
   * that find no idle server wait or are refused. So the PAUSE goes out on the same connection right after
   * the pool was seen with no login in progress and no client waiting for one (a waiting client starts the
   * next login). Best effort: a pool that never settles is paused after `withinMs` all the same.
   */
  private async waitForServerLogins(admin: PgBouncerAdmin, withinMs: number): Promise<void> {
    const deadline = Date.now() + withinMs;
    const n = (r: AdminRow, col: string) => Number(r[col] ?? 0);
    while (Date.now() < deadline) {
      const pools = (await admin.command('SHOW POOLS')).filter((r) => r.database === this.opts.database);
      if (pools.every((p) => n(p, 'sv_login') === 0 && n(p, 'cl_waiting') === 0)) return;
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  async release(): Promise<void> {
    // Never holds clients up: the temporary file goes when its fsync is done (close waits for it).
    this.dropping = this.dropStaged();
    const admin = await this.console();
    try {
      await admin.command(`RESUME ${this.quoted}`);
    } catch (e) {
      if (isNotPaused(e)) return;
      throw e;
    }
  }

  async pointTo(target: Endpoint): Promise<void> {
    await this.repoint(target, false);
  }

  /**
   * RELOAD and RESUME in one write. A RELOAD that changes an entry's server drops the pool's cached server
   * greeting, and a client that logs in before the RESUME makes PgBouncer start a server login that the pause
   * then closes: a failed login, and the pool's clients refused for server_login_retry (seen on 1.18).
   */
  async switchTo(target: Endpoint): Promise<void> {
    await this.repoint(target, true);
  }

  /** The ini rewritten for `target` and fsynced under a temporary name (prepareSwitch), with the text it was made from. */
  private staged: { key: string; ini: Promise<StagedIni> } | undefined;

  prepareSwitch(target: Endpoint): Promise<void> {
    // Set before any await (dropStaged clears the field before its own): a switch called right after finds it.
    const dropped = this.dropStaged();
    const ini = dropped.then(() => this.stageIni(target));
    this.staged = { key: endpointKey(target), ini };
    return ini.then(() => {});
  }

  /** A release's removal of a staged file, still going. */
  private dropping: Promise<void> | undefined;

  private async dropStaged(): Promise<void> {
    const staged = this.staged;
    this.staged = undefined;
    await staged?.ini.then((s) => s.file?.discard()).catch(() => {});
  }

  private async stageIni(target: Endpoint): Promise<StagedIni> {
    const [text, st] = await Promise.all([readFile(this.opts.ini, 'utf8'), stat(this.opts.ini)]).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read ${this.opts.ini} (${e.code ?? e.message})`, 'check router.ini in the plan and that cutover may read and write it');
    });
    const next = rewriteDatabaseEntry(text, this.opts.database, target, this.opts.ini);
    await sweepStaleStagedFiles(this.opts.ini);
    const file = next !== text ? await stageFileAtomic(this.opts.ini, next, { mode: st.mode & 0o7777, owner: { uid: st.uid, gid: st.gid } }) : undefined;
    return { base: text, next, ...(file ? { file } : {}) };
  }

  /**
   * The staged ini for `target` if the file still holds the text it was made from (someone may have edited it
   * since: then it is made again from the new text), else a fresh one.
   */
  private async iniFor(target: Endpoint): Promise<StagedIni> {
    const staged = this.staged;
    this.staged = undefined;
    // A preparation that failed (a full disk, say) is simply tried again here.
    const ready = await staged?.ini.catch(() => undefined);
    if (ready && staged?.key === endpointKey(target) && (await readFile(this.opts.ini, 'utf8').catch(() => undefined)) === ready.base) return ready;
    await ready?.file?.discard();
    return this.stageIni(target);
  }

  private async repoint(target: Endpoint, release: boolean): Promise<void> {
    const { next, file } = await this.iniFor(target);
    await file?.commit();
    const admin = await this.console();
    if (release)
      await admin.commandsAtOnce(['RELOAD', `RESUME ${this.quoted}`]).catch((e: unknown) => {
        // Not paused (a resumed run, or a router that was never held): RELOAD has run all the same.
        if (!isNotPaused(e)) throw e;
      });
    else await admin.command('RELOAD');
    // The rename's durability after the release: a crash before it leaves the old entry, the source (fenced),
    // and `resume` points PgBouncer again. Also when nothing was written: a run killed between an earlier rename
    // and its fsync left it undone.
    await (file ? file.syncDir() : fsyncDir(dirname(this.opts.ini)));
    const now = await this.current();
    const expected = { ...target, database: target.database ?? readDatabaseEntry(next, this.opts.database).database };
    if (!now || now.host !== expected.host || now.port !== expected.port || now.database !== expected.database) {
      throw new OperationError(
        `after RELOAD PgBouncer still routes "${this.opts.database}" to ${now ? `${now.host}:${now.port}/${now.database ?? ''}` : 'nothing'}, not ${expected.host}:${expected.port}/${expected.database ?? ''}`,
        `check that ${this.opts.ini} is the file PgBouncer runs with (SHOW CONFIG conffile) and that the PgBouncer log shows no config error`,
      );
    }
  }

  private async databaseRow(): Promise<AdminRow | undefined> {
    const rows = await (await this.console()).command('SHOW DATABASES');
    return rows.find((r) => r.name === this.opts.database);
  }

  async current(): Promise<Endpoint | undefined> {
    const row = await this.databaseRow();
    if (!row) return undefined;
    return { host: String(row.host ?? ''), port: Number(row.port), ...(row.database != null ? { database: String(row.database) } : {}) };
  }

  async preflight(): Promise<RouterFinding[]> {
    const findings: RouterFinding[] = [];
    const object = `pgbouncer database "${this.opts.database}"`;
    const row = await this.databaseRow();
    if (!row) {
      findings.push({ severity: 'blocker', object, why: 'PgBouncer does not know this database (SHOW DATABASES)', fix: `add it to [databases] in ${this.opts.ini} and RELOAD` });
      return findings;
    }
    const config = await (await this.console()).command('SHOW CONFIG');
    const globalMode = String(config.find((r) => r.key === 'pool_mode')?.value ?? 'session');
    const mode = row.pool_mode ? String(row.pool_mode) : globalMode;
    if (mode === 'session') {
      findings.push({
        severity: 'blocker',
        object,
        why: 'session pool mode: PAUSE waits until every client disconnects, so the hold would not finish (pgbouncer#369)',
        fix: 'use pool_mode = transaction for this database, or route with another router kind',
      });
    }
    const minPool = Number(row.min_pool_size ?? 0) > 0 ? Number(row.min_pool_size) : Number(config.find((r) => r.key === 'min_pool_size')?.value ?? 0);
    if (minPool > 0) {
      findings.push({
        severity: 'blocker',
        object,
        why: `min_pool_size = ${minPool}: PgBouncer opens server connections to keep that size while the database is paused, the pause closes them as failed logins, and after the switch the pool's queries are refused for server_login_retry (seen on 1.18; pgbouncer#420)`,
        fix: `set min_pool_size = 0 for the cutover (in ${this.opts.ini}, then RELOAD) and restore it afterwards`,
      });
    }
    try {
      readDatabaseEntry(await readFile(this.opts.ini, 'utf8'), this.opts.database, this.opts.ini);
    } catch (e) {
      findings.push({ severity: 'blocker', object: this.opts.ini, why: e instanceof Error ? e.message : String(e), fix: e instanceof UsageError && e.hint ? e.hint : 'check router.ini' });
    }
    return findings;
  }

  /**
   * The users this database's pools log in to the server as (SHOW POOLS, and the entry's forced user), with the
   * secret PgBouncer's auth_file gives each, where this process may read that file.
   */
  async serverLogins(): Promise<RouterLogin[]> {
    const admin = await this.console();
    const [pools, row, config] = await Promise.all([admin.command('SHOW POOLS'), this.databaseRow(), admin.command('SHOW CONFIG')]);
    const users = new Set(pools.filter((p) => p.database === this.opts.database && p.user != null).map((p) => String(p.user)));
    if (row?.force_user) users.add(String(row.force_user));
    // A password in the entry's connection string is what PgBouncer logs in with, not the auth_file's. An ini
    // without the entry is preflight's blocker (router preflight), not an error here.
    const entry: { password?: string } = await readFile(this.opts.ini, 'utf8')
      .then((text) => readEntryLogin(text, this.opts.database, this.opts.ini))
      .catch(() => ({}));
    const authFile = String(config.find((r) => r.key === 'auth_file')?.value ?? '');
    const secrets = entry.password === undefined && authFile ? await readFile(resolve(dirname(this.opts.ini), authFile), 'utf8').then(parseUserlist, () => undefined) : undefined;
    return [...users].sort().map((user) => {
      const secret = entry.password ?? secrets?.get(user);
      return secret !== undefined ? { user, secret } : { user };
    });
  }

  async close(): Promise<void> {
    await this.dropping;
    await this.dropStaged();
    await this.pauser?.close();
    this.pauser = undefined;
    await this.admin?.close();
    this.admin = undefined;
  }
}
