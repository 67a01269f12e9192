import type { FenceOptions, FenceTarget, LeakCheck, LeakWatchSetup, PriorState, ReadOnlyAdapter, ReadOnlyStatusResult } from '../../src/readonly/types.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { captureAccountLocks, unlockAccounts } from './mysql-account-locks.js';
import { connectMysql } from './mysql-connection.js';
import type { MysqlFlavor } from './mysql-flavor.js';
import { serverIdentity } from './mysql-identity.js';
import { watchServerLeaks } from './mysql-leak-watch.js';
import { applyManagedFence, captureManagedFence, restoreManagedFence } from './mysql-managed-fence.js';
import { resolveProfile } from './mysql-privilege-profile.js';
import { mysqlReadOnlyContext, mysqlScopeOf, type MysqlPrior, type MysqlReadOnlyContext, type MysqlScope } from './mysql-readonly-context.js';
import { readOnlyStatus } from './mysql-readonly-status.js';
import { applySchemaFence, captureSchemaGrants, restoreSchemaFence, schemaLeakCheck } from './mysql-schema-fence.js';
import { binlogCoordinates, decodePosition } from './mysql-position.js';
import { applySchemaReadOnly, restoreSchemaReadOnly, schemaState, watchSchemaReadOnly } from './mysql-schema-readonly.js';
import { applyServerFence, restoreServerFence, serverState } from './mysql-server-fence.js';

/**
 * The MySQL/MariaDB read-only fence. Server scope sets read_only (mysql-server-fence.ts); schema scope uses
 * ALTER SCHEMA ... READ ONLY where the server has it (mysql-schema-readonly.ts) and otherwise revokes the app
 * accounts' write privileges (mysql-schema-fence.ts). Strict mode locks the app accounts (mysql-account-locks.ts);
 * the leak check compares the server's write position (mysql-leak-watch.ts).
 */
export class MysqlReadOnlyAdapter implements ReadOnlyAdapter {
  readonly engine: 'mysql' | 'mariadb';
  readonly flavor: MysqlFlavor;

  private constructor(private readonly c: MysqlReadOnlyContext) {
    this.flavor = c.flavor;
    this.engine = c.flavor.kind;
  }

  static async connect(ep: DbEndpoint, lockTimeoutMs: number): Promise<MysqlReadOnlyAdapter> {
    const { conn, flavor } = await connectMysql(ep, { lockTimeoutMs });
    return new MysqlReadOnlyAdapter(mysqlReadOnlyContext(ep, conn, flavor));
  }

  async close(): Promise<void> {
    await this.c.conn.end().catch(() => this.c.conn.destroy());
  }

  async serverId(): Promise<string> {
    return serverIdentity(this.c.q, this.flavor);
  }

  defaultStatusTargets(): FenceTarget[] {
    return this.flavor.schemaReadOnly && this.c.ep.database ? [{ scope: 'server' }, { scope: 'schema', name: this.c.ep.database }] : [{ scope: 'server' }];
  }

  private scopeOf(target: FenceTarget): MysqlScope {
    return mysqlScopeOf(this.flavor, target);
  }

  async capturePrior(target: FenceTarget, opts: FenceOptions): Promise<PriorState> {
    const scope = this.scopeOf(target);
    if (scope === 'schema-grants') return captureSchemaGrants(this.c, target.name!, opts);
    // Managed profile (the account may not set read_only): the server fence is account locks and revokes.
    if (scope === 'server' && (await resolveProfile(this.c.q, this.flavor, opts.privileges)) === 'managed') {
      const managed = await captureManagedFence(this.c, opts);
      const roles = Object.fromEntries(Object.entries(managed.accounts).map(([label, a]) => [label, { user: a.user, host: a.host, locked: a.locked }]));
      return { flavor: this.flavor.kind, roles, managed } satisfies MysqlPrior;
    }
    const roles = await captureAccountLocks(this.c, scope, opts);
    const prior: MysqlPrior = scope === 'server' ? { flavor: this.flavor.kind, server: await serverState(this.c), roles } : { flavor: this.flavor.kind, schemaReadOnly: await schemaState(this.c, target.name!), roles };
    return prior;
  }

  mergePrior(recorded: PriorState, fresh: PriorState): PriorState {
    const r = recorded as MysqlPrior;
    const f = fresh as MysqlPrior;
    // The first record's values win: a second `on` would otherwise record the fence itself as "previous".
    const grants = r.schemaGrants || f.schemaGrants ? { schemaGrants: { ...f.schemaGrants, ...r.schemaGrants } } : {};
    const managed = r.managed || f.managed ? { managed: { accounts: { ...f.managed?.accounts, ...r.managed?.accounts } } } : {};
    return { ...f, ...r, roles: { ...f.roles, ...r.roles }, ...grants, ...managed } satisfies MysqlPrior;
  }

  async apply(target: FenceTarget, opts: FenceOptions, prior: PriorState) {
    const scope = this.scopeOf(target);
    const p = prior as MysqlPrior;
    if (scope === 'schema-grants') {
      const exempt = opts.exemptSessions ?? [];
      const done = await applySchemaFence(this.c.q, p.schemaGrants ?? {}, p.stillWriting ?? [], { schema: target.name!, drainTimeoutMs: opts.drainTimeoutMs, probeMs: opts.probeMs, exempt, flavor: this.flavor });
      const { revoked, ...rest } = done;
      return { scope: target.scope, name: target.name!, mode: opts.mode, persistent: true, untouched: [], lockedRoles: revoked, ...rest };
    }
    if (scope === 'server' && p.managed) return applyManagedFence(this.c, target, opts, p.managed);
    return scope === 'server' ? applyServerFence(this.c, target, opts, p) : applySchemaReadOnly(this.c, target, opts, p);
  }

  /** The watch's own session must survive a fence that ends every client session (FenceOptions.clientsHeld). */
  async prepareLeakWatch(target: FenceTarget): Promise<LeakWatchSetup> {
    const scope = this.scopeOf(target);
    const sessions = [String(this.c.conn.threadId)];
    if (scope === 'server') return { method: 'position', sessions };
    // A database fenced by revokes: its events in the binary log from the fence on are the leaks, whoever wrote them.
    if (scope === 'schema-grants' && (await binlogCoordinates(this.c.q, this.flavor))) return { method: 'binlog', sessions };
    return { method: 'sampled', sessions, ...(scope === 'schema-grants' ? { fallback: 'the binary log is off' } : {}) };
  }

  /**
   * The leak check of a fence already in place, for at least `minMs` and until `until` settles: the cutover
   * runs it beside the catch-up and verify instead of before them. Sessions are those of the moment (the fence
   * ended older ones); the schema-grants check suspects every session in the schema, since the accounts that
   * kept write privileges were worked out by `on`.
   */
  async watchLeaks(target: FenceTarget, exempt: readonly string[], minMs: number, until: Promise<unknown>, fencePosition?: string): Promise<LeakCheck> {
    const scope = this.scopeOf(target);
    const warnings: string[] = [];
    if (scope === 'schema-grants') {
      const at = fencePosition ? decodePosition(fencePosition) : undefined;
      return schemaLeakCheck(this.c.q, this.flavor, target.name!, minMs, 'all', exempt, warnings, until, at?.file ? { file: at.file, pos: at.pos! } : undefined);
    }
    if (scope === 'schema') return watchSchemaReadOnly(this.c, target.name!, minMs, warnings, until);
    return watchServerLeaks(this.c, minMs, exempt, warnings, until, fencePosition);
  }

  async restore(target: FenceTarget, prior: PriorState | undefined, lockTimeoutMs: number) {
    void lockTimeoutMs; // applied to the session at connect
    const scope = this.scopeOf(target);
    const p = prior as MysqlPrior | undefined;
    const warnings: string[] = [];
    if (scope === 'schema-grants') {
      if (!p?.schemaGrants) {
        return { scope: target.scope, name: target.name!, wasOn: false, restored: 'unchanged: no record of revoked privileges was found in the state dir', unlockedRoles: [], warnings };
      }
      const back = await restoreSchemaFence(this.c.q, p.schemaGrants);
      return {
        scope: target.scope,
        name: target.name!,
        wasOn: true,
        restored: `granted back the write privileges recorded for ${Object.keys(p.schemaGrants).length} account(s)`,
        unlockedRoles: back.regranted,
        warnings: back.warnings,
      };
    }
    if (scope === 'server' && p?.managed) {
      const back = await restoreManagedFence(this.c, p.managed, warnings);
      return { scope: target.scope, wasOn: true, restored: back.restored, unlockedRoles: back.unlockedRoles, warnings };
    }
    const { wasOn, restored } = scope === 'server' ? await restoreServerFence(this.c, p, warnings) : await restoreSchemaReadOnly(this.c, target.name!, p);
    const unlockedRoles = await unlockAccounts(this.c, p, warnings);
    return { scope: target.scope, ...(target.name ? { name: target.name } : {}), wasOn, restored, unlockedRoles, warnings };
  }

  status(targets: Array<FenceTarget & { fencedAt?: string }>): Promise<Omit<ReadOnlyStatusResult, 'action' | 'engine' | 'server'>> {
    return readOnlyStatus(this.c, targets);
  }
}
