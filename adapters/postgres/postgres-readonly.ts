import type { FenceOptions, FenceTarget, LateLeakCheck, LeakCheck, LeakWatchSetup, PriorState, ReadOnlyAdapter, ReadOnlyStatusResult } from '../../src/readonly/types.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { connectPg } from './postgres-connection.js';
import { applyGucFence, explicitSetting, restoreGucFence } from './postgres-guc-fence.js';
import { PgLeakWatch } from './postgres-leak-watch.js';
import { checkManagedFence } from './postgres-managed-fence.js';
import { readPrivileges, resolveProfile, type PgProfile } from './postgres-privileges.js';
import { assertTargetExists, gucScopeOf, pgReadOnlyContext, type PgPrior, type PgReadOnlyContext } from './postgres-readonly-context.js';
import { readOnlyStatus } from './postgres-readonly-status.js';
import { captureRoleLogins } from './postgres-role-locks.js';
import { applySchemaScopeFence, restoreSchemaScopeFence } from './postgres-schema-fence.js';
import { superuserSessions } from './postgres-sessions.js';

/**
 * The PostgreSQL read-only fence. Server, database and role scope set the read-only default
 * (postgres-guc-fence.ts); schema scope puts a trigger on every table (postgres-schema-fence.ts). Strict mode
 * locks the app roles out (postgres-role-locks.ts); the leak check samples sessions and, at database scope,
 * decodes the write-ahead log (postgres-leak-watch.ts).
 */
export class PostgresReadOnlyAdapter implements ReadOnlyAdapter {
  readonly engine = 'postgres' as const;
  private readonly leaks: PgLeakWatch;

  private constructor(private readonly c: PgReadOnlyContext) {
    this.leaks = new PgLeakWatch(c);
  }

  static async connect(ep: DbEndpoint, lockTimeoutMs: number): Promise<PostgresReadOnlyAdapter> {
    return new PostgresReadOnlyAdapter(pgReadOnlyContext(ep, await connectPg(ep, { applicationName: 'cutover readonly', lockTimeoutMs })));
  }

  async close(): Promise<void> {
    await this.leaks.closeDecoder();
    await this.c.client.end().catch(() => {});
  }

  async serverId(): Promise<string> {
    try {
      const rows = await this.c.q<{ id: string }>(`SELECT system_identifier::text AS id FROM pg_control_system()`);
      if (rows[0]?.id) return `pg:${rows[0].id}`;
    } catch {
      // pg_control_system() may be revoked; host:port still keys the record.
    }
    return `pg:${this.c.ep.host}:${this.c.ep.port}`;
  }

  defaultStatusTargets(): FenceTarget[] {
    return this.c.ep.database ? [{ scope: 'server' }, { scope: 'database', name: this.c.ep.database }] : [{ scope: 'server' }];
  }

  /** The privilege profile `on` runs with (superuser or managed), refused when the account cannot do the asked fence. */
  private async profile(target: FenceTarget, opts: FenceOptions): Promise<PgProfile> {
    const p = await this.c.on("reading the account's privileges", () => readPrivileges(this.c.client));
    const profile = resolveProfile(opts.privileges, p, `${this.c.ep.host}:${this.c.ep.port}`, 'readonly on');
    if (profile === 'managed') await checkManagedFence(this.c, p, target, opts);
    return profile;
  }

  async capturePrior(target: FenceTarget, opts: FenceOptions): Promise<PriorState> {
    const scope = target.scope === 'schema' ? undefined : gucScopeOf(target);
    await assertTargetExists(this.c, target);
    await this.profile(target, opts);
    const roles = await captureRoleLogins(this.c, opts);
    const prior: PgPrior = { setting: scope ? await explicitSetting(this.c, scope, target.name) : null, roles };
    return prior;
  }

  mergePrior(recorded: PriorState, fresh: PriorState): PriorState {
    const r = recorded as PgPrior;
    const f = fresh as PgPrior;
    // The first record's setting wins: a second `on` would otherwise record the fence as "previous".
    return { setting: r.setting, roles: { ...f.roles, ...r.roles } } satisfies PgPrior;
  }

  async apply(target: FenceTarget, opts: FenceOptions, prior: PriorState) {
    // A schema fence rejects writes synchronously (a trigger): its leak check looks for gaps in it, not commits.
    if (target.scope === 'schema') return applySchemaScopeFence(this.c, this.leaks, target, opts, prior);
    const scope = gucScopeOf(target);
    const profile = await this.profile(target, opts);
    // Before anything changes: the slot must exist before the first commit that could leak, and creating it waits
    // (bounded) for the server's running transactions, so it is done while nobody is fenced yet.
    const setup = opts.decodeLeaks === false ? undefined : await this.leaks.prepare(target);
    try {
      const exemptSessions = [...(opts.exemptSessions ?? []), ...(setup?.sessions ?? [])];
      // Managed: provider superuser sessions cannot be ended; the fence leaves them and names them.
      const protect = profile === 'managed' ? (await superuserSessions(this.c.client, target, exemptSessions)).map((s) => s.id) : [];
      return await applyGucFence(this.c, this.leaks, target, scope, { ...opts, exemptSessions }, prior, protect);
    } finally {
      await this.leaks.closeDecoder();
    }
  }

  async restore(target: FenceTarget, prior: PriorState | undefined, lockTimeoutMs: number) {
    const scope = target.scope === 'schema' ? undefined : gucScopeOf(target);
    // No profile check: lifting is the safe direction; a privilege the account lacks surfaces as the server's refusal.
    await assertTargetExists(this.c, target);
    return scope ? restoreGucFence(this.c, target, scope, prior) : restoreSchemaScopeFence(this.c, target, prior, lockTimeoutMs);
  }

  prepareLeakWatch(target: FenceTarget, opts: { slot?: string } = {}): Promise<LeakWatchSetup> {
    return this.leaks.prepare(target, opts);
  }

  watchLeaks(target: FenceTarget, exempt: readonly string[], minMs: number, until: Promise<unknown>, fencePosition?: string): Promise<LeakCheck> {
    return this.leaks.watch(target, exempt, minMs, until, fencePosition);
  }

  lateLeaks(target: FenceTarget, exempt: readonly string[], appliedThrough?: string): Promise<LateLeakCheck> {
    return this.leaks.lateLeaks(target, exempt, appliedThrough);
  }

  status(targets: Array<FenceTarget & { fencedAt?: string }>): Promise<Omit<ReadOnlyStatusResult, 'action' | 'engine' | 'server'>> {
    return readOnlyStatus(this.c, targets);
  }
}
