import pg from 'pg';
import { readOnlyOff, readOnlyOn } from '../readonly/readonly.js';
import type { FenceOnResult } from '../readonly/types.js';
import { PostgresSandbox } from '../sandbox/postgres-sandbox.js';
import { Workload, workloadTableSql, WORKLOAD_TABLE, type WorkloadResult } from '../sandbox/workload.js';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface RehearseOptions {
  /** Rows of sample data loaded before the workload starts. */
  rows?: number;
  /** Concurrent writers (plus half as many readers). */
  clients?: number;
  /** How long the fence stays on. */
  holdMs?: number;
  /** Leave the sandbox running and return its URL. */
  keep?: boolean;
  onProgress?: (step: string) => void;
}

export interface RehearseStep {
  name: string;
  startMs: number;
  endMs: number;
}

export interface RehearseResult {
  kind: 'fence';
  engine: 'postgres';
  serverVersion: string;
  rowsLoaded: number;
  clients: number;
  steps: RehearseStep[];
  fence: Pick<FenceOnResult, 'terminated' | 'drained' | 'leakCheck' | 'durationMs'>;
  /** Longest span without an acknowledged write (the fence window, as clients saw it). */
  writeBlockedMs: number;
  acknowledgedWrites: number;
  verifiedWrites: number;
  missingWrites: string[];
  /** Writes refused by the fence (expected: there is no router hold in a fence-only rehearsal). */
  refusedWrites: number;
  /** Writes whose connection was ended by the fence: not acknowledged, so not owed. */
  inDoubtWrites: number;
  /** With `keep`: how to reach the sandbox (the password sits in a 0600 passfile) and how to stop it. */
  kept?: { url: string; passfile: string; stopCommand: string };
}

/**
 * Rehearses the read-only fence on a throw-away PostgreSQL server under a live workload: fence, hold, lift,
 * then checks that every acknowledged write is there.
 */
export async function rehearse(opts: RehearseOptions = {}): Promise<RehearseResult> {
  const rows = opts.rows ?? 200_000;
  const clients = opts.clients ?? 4;
  const progress = opts.onProgress ?? (() => {});
  const t0 = Date.now();
  const steps: RehearseStep[] = [];
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    progress(name);
    const startMs = Date.now() - t0;
    try {
      return await fn();
    } finally {
      steps.push({ name, startMs, endMs: Date.now() - t0 });
    }
  };
  const sb = await step('start sandbox PostgreSQL 15', () => PostgresSandbox.start({ major: 15 }));
  progress(`sandbox ${sb.label} in ${sb.dir}`);
  // Inside the sandbox dir, so an interrupted run leaves nothing behind.
  const stateDir = await mkdtemp(join(sb.dir, 'state-'));
  try {
    const admin = new pg.Client({ host: sb.host, port: sb.port, user: 'postgres', password: sb.password, database: 'postgres' });
    admin.on('error', () => {});
    await admin.connect();
    const serverVersion = (await admin.query<{ v: string }>(`SELECT current_setting('server_version') AS v`)).rows[0]!.v;
    await step(`load ${rows} rows`, async () => {
      await admin.query('CREATE DATABASE shop');
      const shop = new pg.Client({ host: sb.host, port: sb.port, user: 'postgres', password: sb.password, database: 'shop' });
      await shop.connect();
      await shop.query('CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL)');
      await shop.query(`INSERT INTO items SELECT g, 'item ' || g, (g % 1000) / 10.0 FROM generate_series(1, $1::int) g`, [rows]);
      await shop.query(workloadTableSql());
      await shop.end();
    });
    await admin.end();
    const workload = new Workload({ host: sb.host, port: sb.port, user: 'postgres', password: sb.password, database: 'shop', writers: clients, readers: Math.max(1, Math.floor(clients / 2)) }).start();
    let result: WorkloadResult;
    let fence: FenceOnResult;
    const fenceOpts = { url: sb.url('shop'), password: sb.password, stateDir, drainTimeoutMs: 1000, probeMs: 300 };
    try {
      await step('workload warm-up', () => sleep(1000));
      fence = await step('fence (enforced, database scope)', () => readOnlyOn(fenceOpts));
      await step('hold read-only', () => sleep(opts.holdMs ?? 1000));
      await step('lift', () => readOnlyOff(fenceOpts));
      await step('workload after lift', () => sleep(1000));
    } finally {
      result = await workload.stop();
    }
    const verify = await step('verify acknowledged writes', async () => {
      const c = new pg.Client({ host: sb.host, port: sb.port, user: 'postgres', password: sb.password, database: 'shop' });
      await c.connect();
      const { rows: present } = await c.query<{ k: string }>(`SELECT client || ':' || seq AS k FROM ${WORKLOAD_TABLE}`);
      await c.end();
      const have = new Set(present.map((r) => r.k));
      return result.acknowledged.filter((k) => !have.has(k));
    });
    const writes = result.ops.filter((o) => o.kind === 'write');
    return {
      kind: 'fence',
      engine: 'postgres',
      serverVersion,
      rowsLoaded: rows,
      clients,
      steps,
      fence: { terminated: fence!.terminated, drained: fence!.drained, leakCheck: fence!.leakCheck, durationMs: fence!.durationMs },
      writeBlockedMs: result.maxWriteGapMs,
      acknowledgedWrites: result.acknowledged.length,
      verifiedWrites: result.acknowledged.length - verify.length,
      missingWrites: verify,
      refusedWrites: writes.filter((o) => o.outcome === 'fail').length,
      inDoubtWrites: writes.filter((o) => o.outcome === 'unknown').length,
      ...(opts.keep ? { kept: await keepInfo(sb) } : {}),
    };
  } finally {
    if (!opts.keep) await sb.stop();
  }
}

async function keepInfo(sb: PostgresSandbox): Promise<NonNullable<RehearseResult['kept']>> {
  const passfile = join(sb.dir, 'pgpass');
  await writeFile(passfile, `${sb.host}:${sb.port}:*:postgres:${sb.password}\n`, { mode: 0o600 });
  return { url: sb.url('shop'), passfile, stopCommand: sb.stopCommand() };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
