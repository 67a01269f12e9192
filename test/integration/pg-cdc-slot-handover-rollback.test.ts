import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/built-cli.js';
import { cli, tempStateDir } from '../helpers/cli.js';
import { canWrite, seedDatabase, startCutoverEnv, writePlan, type PostgresEnv } from '../helpers/cutover-env.js';
import { parkAtStep } from '../helpers/kill-at-step.js';
import { client, exec, pg15Missing, pg17Missing, type PostgresSandbox } from '../helpers/pg.js';

const unavailable = pg15Missing ?? pg17Missing;
/** Two consumers with different plugins: the handover makes both on the target, a rollback drops both. */
const SLOTS = { orders_cdc: 'test_decoding', audit_cdc: 'pgoutput' } as const;
const NAMES = Object.keys(SLOTS);

/** The plan's slots on a server: name → confirmed_flush_lsn (the consumer's position). */
async function slotsOn(sb: PostgresSandbox): Promise<Record<string, string | null>> {
  const c = await client(sb, { database: 'postgres' });
  try {
    const { rows } = await c.query<{ slot_name: string; confirmed: string | null }>(
      `SELECT slot_name::text, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = ANY($1::text[]) ORDER BY 1`,
      [NAMES],
    );
    return Object.fromEntries(rows.map((r) => [r.slot_name, r.confirmed]));
  } finally {
    await c.end();
  }
}

describe.skipIf(unavailable)('CDC slot handover rolled back: a run killed after the handover, before the point of no return', () => {
  let e: PostgresEnv;
  let stateDir: string;

  beforeAll(async () => {
    await ensureBuilt();
    e = await startCutoverEnv('postgres');
    stateDir = await tempStateDir(e.src.dir);
    await seedDatabase(e.src, 'shop', 2000);
    for (const [slot, plugin] of Object.entries(SLOTS)) await exec(e.src, 'shop', `SELECT pg_create_logical_replication_slot('${slot}', '${plugin}')`);
  });
  afterAll(async () => e?.stop());

  it('rollback drops the target slots the handover made, leaves the source slots where their consumers are, unfences the source; a rerun makes the slots again', async () => {
    const plan = await writePlan(e, { db: 'shop', stateDir, maxWriteBlocked: '30s', extra: `cdc: { slots: [${NAMES.join(', ')}] }` });
    const sync = await cli(['sync', plan], e.env);
    expect(sync.code, sync.err).toBe(0);
    // Commits after the slots were made: a consumer position moved by mistake would differ from these.
    await exec(e.src, 'shop', `INSERT INTO items (name, price) SELECT 'late ' || g, 1 FROM generate_series(1, 100) g`);
    const source = await slotsOn(e.src);
    expect(Object.keys(source).sort()).toEqual([...NAMES].sort());

    // Parked at the point of no return's begin: cdc-handover has made the target slots, nothing irreversible yet.
    const parked = await parkAtStep(['run', plan, '--yes'], e.env, stateDir, 'point-of-no-return');
    expect(Object.keys(await slotsOn(e.dst)).sort()).toEqual([...NAMES].sort());
    expect(await canWrite(e.src, 'shop')).toBe(false);
    const killed = await parked.stop('SIGKILL');
    expect(killed.exitCode).toBeUndefined();
    await rm(join(stateDir, 'paused-at-point-of-no-return'));

    const status = await cli(['status', plan, '--json'], e.env);
    expect(status.code, status.err).toBe(0);
    expect(status.json()).toMatchObject({ phase: 'in-flight', unfinished: ['point-of-no-return'] });

    const rollback = await cli(['rollback', plan], e.env);
    expect(rollback.code, rollback.err).toBe(0);
    expect(await slotsOn(e.dst)).toEqual({});
    expect(await slotsOn(e.src)).toEqual(source);
    expect(await canWrite(e.src, 'shop')).toBe(true);
    expect((await cli(['status', plan, '--json'], e.env)).json().phase).toBe('synced');

    // A slot the rollback could not drop (here: made again by hand) is a leftover status names, with its drop.
    const [stuck] = NAMES;
    await exec(e.dst, 'shop', `SELECT pg_create_logical_replication_slot('${stuck}', 'test_decoding')`);
    const leftovers: Array<{ where: string; name: string; drop: string }> = (await cli(['status', plan, '--json'], e.env)).json().leftovers;
    expect(leftovers.filter((l) => l.where === 'target' && l.name === stuck).map((l) => l.drop)).toEqual([`SELECT pg_drop_replication_slot('${stuck}');`]);
    await exec(e.dst, 'shop', `SELECT pg_drop_replication_slot('${stuck}')`);

    const rerun = await cli(['run', plan, '--yes', '--json'], e.env);
    expect(rerun.code, rerun.err).toBe(0);
    const cdc: Array<{ slot: string; plugin: string; sourceStop: string }> = rerun.json().cdc;
    expect(cdc.map((s) => `${s.slot} ${s.plugin}`).sort()).toEqual(
      Object.entries(SLOTS)
        .map(([s, p]) => `${s} ${p}`)
        .sort(),
    );
    expect(Object.keys(await slotsOn(e.dst)).sort()).toEqual([...NAMES].sort());
    expect(await slotsOn(e.src)).toEqual(source);
    expect(await canWrite(e.dst, 'shop')).toBe(true);
  });
});
