import type { FenceTarget, LateLeakCheck, LeakCheck, LeakWatchSetup, LeakedTransaction, SessionInfo } from '../../src/readonly/types.js';
import { sleep } from '../../src/util/sleep.js';
import { mapPgError } from './postgres-connection.js';
import { PgLeakDecoder, compareLsn } from './postgres-leak-decoding.js';
import type { PgReadOnlyContext } from './postgres-readonly-context.js';
import { watchSchemaFence } from './postgres-schema-fence.js';
import { publicSession, sessionsInScope, type PgSession } from './postgres-sessions.js';

export const LEAK_SAMPLE_MS = 20;

/**
 * The leak check of a fence: samples sessions that hold a write transaction after the fence and, where a
 * logical decoding slot was prepared before it (database scope), reads every commit after the fence position.
 * One per adapter: the decoding slot's session lives from `prepare` until `closeDecoder`.
 */
export class PgLeakWatch {
  /** The decoding slot's session, from prepare until closeDecoder. */
  private decoder: PgLeakDecoder | undefined;
  /** Why the leak check samples only (set by prepare, or when decoding failed). */
  private decodeFallback: string | undefined;
  /** The fence position the decoded watch read from; lateLeaks continues from there. */
  private decodedFrom: string | undefined;
  /** Transaction ids the samplers caught, with their sessions, to name the sessions of decoded leaks. */
  private readonly xidSessions = new Map<string, PgSession>();

  constructor(private readonly c: PgReadOnlyContext) {}

  async closeDecoder(): Promise<void> {
    await this.decoder?.close();
    this.decoder = undefined;
  }

  async prepare(target: FenceTarget, opts: { slot?: string } = {}): Promise<LeakWatchSetup> {
    const own = String((await this.c.q<{ p: number }>(`SELECT pg_backend_pid() AS p`))[0]!.p);
    if (target.scope === 'schema') return { method: 'trigger', sessions: [own] };
    if (target.scope !== 'database' || !target.name) {
      this.decodeFallback = `a decoding slot reads one database; the ${target.scope} scope is sampled`;
      return { method: 'sampled', fallback: this.decodeFallback, sessions: [own] };
    }
    const opened = await PgLeakDecoder.open(this.c.ep, target.name, opts.slot);
    if ('fallback' in opened) {
      this.decodeFallback = opened.fallback;
      return { method: 'sampled', fallback: opened.fallback, sessions: [own] };
    }
    this.decoder = opened;
    return { method: 'decoded', sessions: [own, String(opened.pid)] };
  }

  private withDecoder(exempt: readonly string[]): string[] {
    return this.decoder ? [...exempt, String(this.decoder.pid)] : [...exempt];
  }

  /** The session of a decoded transaction, when a sample caught it. */
  private named(t: LeakedTransaction): LeakedTransaction {
    const s = this.xidSessions.get(t.xid);
    return s ? { ...t, session: publicSession(s) } : t;
  }

  /**
   * Samples the scope for sessions that hold a write transaction id after the fence (names who writes), and
   * with a prepared decoding slot reads every commit after `fencePosition` (catches what samples miss).
   */
  async watch(target: FenceTarget, exempt: readonly string[], minMs: number, until: Promise<unknown>, fencePosition?: string): Promise<LeakCheck> {
    const { c } = this;
    const started = Date.now();
    let done = false;
    void until.finally(() => (done = true));
    if (target.scope === 'schema') return watchSchemaFence(c.client, target.name!, started, minMs, () => done);
    const seen = new Map<number, PgSession>();
    const skip = this.withDecoder(exempt);
    const decoder = fencePosition ? this.decoder : undefined;
    const decoded: LeakedTransaction[] = [];
    let decodeError: unknown;
    const drain = async (): Promise<void> => {
      if (!decoder || !fencePosition || decodeError) return;
      try {
        decoded.push(...(await decoder.drain(fencePosition)).leaks);
      } catch (e) {
        decodeError = e;
      }
    };
    // A first read right away moves the slot past the fence position while the caller's other work runs, so the
    // last read (inside the caller's write-blocked window) only decodes what came since.
    await drain();
    const settled = until.then(
      () => {},
      () => {},
    );
    const sample = async (): Promise<void> => {
      for (const s of await sessionsInScope(c.client, target, { writingOnly: true, exempt: skip })) {
        seen.set(s.pid, s);
        if (s.xid) this.xidSessions.set(s.xid, s);
      }
    };
    // The caller's window waits for what follows `until`: the sampler's sleep ends as soon as it settles.
    const sampling = (async () => {
      while (!done || Date.now() - started < minMs) {
        await sample();
        await Promise.race([sleep(LEAK_SAMPLE_MS), ...(Date.now() - started >= minMs ? [settled] : [])]);
      }
    })();
    sampling.catch(() => {});
    await settled;
    if (Date.now() - started < minMs) await sleep(minMs - (Date.now() - started));
    // The last read of the slot (its own session) runs beside the last sample and the prepared transactions (the
    // fence's session), all begun after `until`: the window waits for the longer of the two, not their sum.
    const [, prepared] = await Promise.all([drain(), sampling.then(sample).then(() => preparedInScope(c, target))]);
    const writers: SessionInfo[] = [...seen.values()].map((s) => publicSession(s, 'acquired a write transaction after the fence'));
    writers.push(...prepared);
    const probeMs = Date.now() - started;
    if (decoder && !decodeError) {
      this.decodedFrom = fencePosition;
      const transactions = decoded.map((t) => this.named(t));
      return { probeMs, clean: writers.length === 0 && transactions.length === 0, writers, method: 'decoded', transactions };
    }
    if (decodeError) {
      this.decodeFallback = `reading the decoding slot failed: ${mapPgError(decodeError, c.ep).message}`;
      await this.closeDecoder();
    } else if (this.decoder) {
      this.decodeFallback = 'no fence position was given to decode from';
    }
    return { probeMs, clean: writers.length === 0, writers, method: 'sampled', ...(this.decodeFallback ? { fallback: this.decodeFallback } : {}) };
  }

  /**
   * After a decoded watch: what committed since. Replication applies in commit order, so a commit at or before
   * `appliedThrough` (where the target stopped applying) is on the target and one after it is not; without that
   * position, the tool's last sentinel (committed and seen on the target right before the detach) is a lower
   * bound. Never throws: a check that cannot run says so.
   */
  async lateLeaks(target: FenceTarget, exempt: readonly string[], appliedThrough?: string): Promise<LateLeakCheck> {
    const none = { splitBy: 'none' as const, replicated: [], sourceOnly: [], openWriters: [] };
    if (!this.decoder || !this.decodedFrom) return { checked: false, note: this.decodeFallback ?? 'no decoded leak check ran before', ...none };
    try {
      const d = await this.decoder.drain(this.decodedFrom);
      const leaks = d.leaks.map((t) => this.named(t));
      const openWriters = (await sessionsInScope(this.c.client, target, { writingOnly: true, exempt: this.withDecoder(exempt) })).map((s) =>
        publicSession(s, 'inside a write transaction: may still commit on the old source'),
      );
      const bound = appliedThrough ?? d.lastSentinelLsn;
      const reached = (t: LeakedTransaction) => bound !== undefined && compareLsn(t.commitPosition, bound) <= 0;
      return {
        checked: true,
        splitBy: appliedThrough ? 'applied' : d.lastSentinelLsn ? 'sentinel' : 'none',
        replicated: leaks.filter(reached),
        sourceOnly: leaks.filter((t) => !reached(t)),
        openWriters,
      };
    } catch (e) {
      return { checked: false, note: `reading the decoding slot failed: ${mapPgError(e, this.c.ep).message}`, ...none };
    }
  }
}

/** Prepared transactions hold writes that COMMIT PREPARED can still make durable after the fence. */
export async function preparedInScope(c: PgReadOnlyContext, target: FenceTarget): Promise<SessionInfo[]> {
  const params: unknown[] = [];
  let cond = 'true';
  if (target.scope === 'database') {
    params.push(target.name);
    cond = 'database = $1';
  } else if (target.scope === 'role') {
    params.push(target.name);
    cond = 'owner = $1';
  }
  const rows = await c.q<{ gid: string; owner: string; database: string; age_ms: string }>(
    `SELECT gid, owner, database, (extract(epoch FROM clock_timestamp() - prepared) * 1000)::bigint::text AS age_ms
       FROM pg_prepared_xacts WHERE ${cond} ORDER BY prepared`,
    params,
  );
  return rows.map((r) => ({
    id: `prepared:${r.gid}`,
    user: r.owner,
    database: r.database,
    transactionAgeMs: Number(r.age_ms),
    reason: `prepared transaction "${r.gid}" can still be committed (COMMIT PREPARED or ROLLBACK PREPARED it)`,
  }));
}
