import { canWatchLeaks } from '../readonly/adapters.js';
import { openLeakWatcher, readOnlyOff, readOnlyOn, readOnlyStatus } from '../readonly/readonly.js';
import type { SourceFence, TargetHold } from './fence.js';
import type { PlanSession } from './session.js';

type FencedSession = Pick<PlanSession, 'plan' | 'secrets' | 'database' | 'schema' | 'adapter'>;

/** The name of what the source fence covers: the plan's readOnly.name, or the database or schema that moves. */
export function sourceFenceName(s: Pick<PlanSession, 'plan' | 'database' | 'schema'>): { name?: string } {
  const ro = s.plan.readOnly;
  if (ro.name !== undefined) return { name: ro.name };
  if (ro.scope === 'database') return { name: s.database };
  if (ro.scope === 'schema' && s.schema !== undefined) return { name: s.schema };
  return {};
}

/**
 * The session's source fence and target hold, on the read-only machinery's own connections to the plan's URLs.
 * The target hold is the adapter's own where it has one (an engine whose read-only toggle would trip over the replica).
 */
export function planFences(s: FencedSession): { sourceFence: SourceFence; targetHold: TargetHold } {
  const ro = s.plan.readOnly;
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
    stateDir: s.plan.stateDir,
    exemptSessions,
    privileges: s.plan.privileges ?? 'auto',
  });
  const watchable = canWatchLeaks(s.plan.engine, ro.scope);
  const sourceFence: SourceFence = {
    canWatchLeaks: watchable,
    // Strict mode also locks the accounts that bypass the fence.
    on: (r) => readOnlyOn({ ...fenceOptions(r.exemptSessions), clientsHeld: r.clientsHeld, lockBypass: true, ...(r.leakCheck === 'watcher' ? { probeMs: 0, decodeLeaks: false } : {}) }),
    off: async () => {
      await readOnlyOff(fenceOptions([]));
    },
    status: async () => (await readOnlyStatus({ ...sourceServer, scope: ro.scope, ...sourceFenceName(s), stateDir: s.plan.stateDir })).scopes[0],
    watchLeaks: async (exemptSessions) => (watchable ? openLeakWatcher({ ...fenceOptions(exemptSessions), ...(s.adapter.leakSlot !== undefined ? { leakSlot: s.adapter.leakSlot } : {}) }) : undefined),
  };
  // Its database's read-only default, or a schema's hold trigger: replication passes both.
  const scope = s.schema !== undefined ? { scope: 'schema' as const, name: s.schema } : { scope: 'database' as const, name: s.database };
  const holdOptions = { url: s.plan.target.url, ...(s.secrets.target !== undefined ? { password: s.secrets.target } : {}), ...scope, mode: 'advisory' as const, stateDir: s.plan.stateDir, probeMs: 0, decodeLeaks: false };
  const targetHold: TargetHold = {
    on: async () => {
      if (s.adapter.holdTarget) await s.adapter.holdTarget();
      else await readOnlyOn(holdOptions);
    },
    off: async () => {
      if (s.adapter.openTarget) await s.adapter.openTarget();
      else await readOnlyOff(holdOptions);
    },
  };
  return { sourceFence, targetHold };
}
