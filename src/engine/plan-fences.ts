import { canWatchLeaks } from '../readonly/adapters.js';
import { openLeakWatcher, openReadOnly, readOnlyOff, readOnlyOn, readOnlyStatus, type ReadOnlyHandle, type ReadOnlyOptions } from '../readonly/readonly.js';
import type { SourceFence, TargetHold } from './fence.js';
import type { PlanSession } from './session.js';
import type { StateStore } from './state-store.js';

type FencedSession = Pick<PlanSession, 'plan' | 'secrets' | 'database' | 'schema' | 'adapter'> & { state?: Pick<StateStore, 'fences'> };

/** The name of what the source fence covers: the plan's readOnly.name, or the database or schema that moves. */
export function sourceFenceName(s: Pick<PlanSession, 'plan' | 'database' | 'schema'>): { name?: string } {
  const ro = s.plan.readOnly;
  if (ro.name !== undefined) return { name: ro.name };
  if (ro.scope === 'database') return { name: s.database };
  if (ro.scope === 'schema' && s.schema !== undefined) return { name: s.schema };
  return {};
}

/**
 * A read-only connection that `prepare` opens ahead (before the hold) and the next `use` takes and closes; a
 * `use` without one opens its own. One use per preparation: a retry after a failure connects afresh.
 */
function prepared(opts: ReadOnlyOptions): { prepare(): Promise<void>; close(): Promise<void>; use<T>(fn: (h: ReadOnlyHandle) => Promise<T>): Promise<T> } {
  let ready: ReadOnlyHandle | undefined;
  return {
    prepare: async () => {
      ready ??= await openReadOnly({ ...opts, warm: true });
    },
    close: async () => {
      const h = ready;
      ready = undefined;
      await h?.close();
    },
    use: async (fn) => {
      const h = ready ?? (await openReadOnly(opts));
      ready = undefined;
      try {
        return await fn(h);
      } finally {
        // Off the critical path: ending the connection changes nothing the caller waits for.
        void h.close().catch(() => {});
      }
    },
  };
}

/**
 * The session's source fence and target hold, on the read-only machinery's own connections to the plan's URLs.
 * The target hold is the adapter's own where it has one (an engine whose read-only toggle would trip over the replica).
 */
export function planFences(s: FencedSession): { sourceFence: SourceFence; targetHold: TargetHold } {
  const ro = s.plan.readOnly;
  // With a control database the records of what the fence changed live there, so a runner that takes over a dead
  // runner's tenant can put back what that runner's fence changed (role logins included).
  const records = s.state?.fences?.();
  const where = records ? { fenceRecords: records } : { stateDir: s.plan.stateDir };
  const sourceServer = { url: s.plan.source.url, ...(s.secrets.source !== undefined ? { password: s.secrets.source } : {}) };
  const fenceOptions = (exemptSessions: string[]) => ({
    ...sourceServer,
    scope: ro.scope,
    ...sourceFenceName(s),
    mode: ro.mode,
    drainTimeoutMs: ro.drainTimeoutMs,
    lockTimeoutMs: ro.lockTimeoutMs,
    roles: ro.roles,
    terminate: ro.terminate,
    ...where,
    exemptSessions,
    privileges: s.plan.privileges ?? 'auto',
  });
  const watchable = canWatchLeaks(s.plan.engine, ro.scope);
  const fencer = prepared(fenceOptions([]));
  const sourceFence: SourceFence = {
    canWatchLeaks: watchable,
    prepare: fencer.prepare,
    close: fencer.close,
    // Strict mode also locks the accounts that bypass the fence.
    on: (r) =>
      fencer.use((h) =>
        h.on({ exemptSessions: r.exemptSessions, clientsHeld: r.clientsHeld, lockBypass: true, ...(r.leakCheck === 'watcher' ? { probeMs: 0, decodeLeaks: false } : {}), ...(r.ready ? { ready: r.ready } : {}) }),
      ),
    off: async () => {
      await readOnlyOff(fenceOptions([]));
    },
    status: async () => (await readOnlyStatus({ ...sourceServer, scope: ro.scope, ...sourceFenceName(s), ...where })).scopes[0],
    watchLeaks: async (exemptSessions) => (watchable ? openLeakWatcher({ ...fenceOptions(exemptSessions), ...(s.adapter.leakSlot !== undefined ? { leakSlot: s.adapter.leakSlot } : {}) }) : undefined),
  };
  // Its database's read-only default, or a schema's hold trigger: replication passes both.
  const scope = s.schema !== undefined ? { scope: 'schema' as const, name: s.schema } : { scope: 'database' as const, name: s.database };
  const holdOptions = { url: s.plan.target.url, ...(s.secrets.target !== undefined ? { password: s.secrets.target } : {}), ...scope, mode: 'advisory' as const, ...where, probeMs: 0, decodeLeaks: false };
  const holder = prepared(holdOptions);
  const targetHold: TargetHold = {
    prepare: async () => {
      if (!s.adapter.openTarget) await holder.prepare();
    },
    close: holder.close,
    on: async () => {
      if (s.adapter.holdTarget) await s.adapter.holdTarget();
      else await readOnlyOn(holdOptions);
    },
    off: async () => {
      if (s.adapter.openTarget) await s.adapter.openTarget();
      else await holder.use((h) => h.off());
    },
  };
  return { sourceFence, targetHold };
}
