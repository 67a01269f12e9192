import type { CdcSlotHandover, Finding } from '../../src/engine/cutover-adapter.js';
import type { PgClient } from './postgres-connection.js';
import { quoteLiteral } from './postgres-sql.js';

/** The plan's `cdc` key as the adapter needs it. */
export interface CdcPolicy {
  slots: readonly string[];
  /** The target slots' output plugin; absent: each source slot's own. */
  plugin?: string;
}

interface SourceSlot {
  slot_name: string;
  slot_type: string;
  plugin: string | null;
  database: string | null;
  confirmed: string | null;
}

async function sourceSlots(src: PgClient, names: readonly string[]): Promise<Map<string, SourceSlot>> {
  const { rows } = await src.query<SourceSlot>(`SELECT slot_name::text, slot_type, plugin::text, database::text, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots WHERE slot_name = ANY($1::text[])`, [
    names,
  ]);
  return new Map(rows.map((r) => [r.slot_name, r]));
}

/** The plugin each target slot is made with: the plan's, else its source slot's. */
async function pluginsFor(src: PgClient, cdc: CdcPolicy): Promise<Map<string, string | undefined>> {
  const slots = await sourceSlots(src, cdc.slots);
  return new Map(cdc.slots.map((n) => [n, cdc.plugin ?? slots.get(n)?.plugin ?? undefined]));
}

/**
 * Preflight of the handover: each slot is a logical slot of the moved database on the source, its name is free on
 * the target, and the target can decode with its plugin (a temporary slot is made and dropped: that also proves
 * wal_level = logical and a free slot). A plugin check that cannot finish (a long transaction on the target holds
 * up a new slot) is a warning, not a blocker.
 */
export async function cdcFindings(src: PgClient, dstAdmin: PgClient, database: string, cdc: CdcPolicy): Promise<Finding[]> {
  const findings: Finding[] = [];
  const check = 'cdc slots';
  const slots = await sourceSlots(src, cdc.slots);
  for (const name of cdc.slots) {
    const s = slots.get(name);
    const fix = `create it on the source (SELECT pg_create_logical_replication_slot(${quoteLiteral(name)}, 'pgoutput') in database ${database}) or remove it from cdc.slots`;
    if (!s) findings.push({ severity: 'blocker', check, object: name, message: `replication slot ${name} does not exist on the source`, why: 'there is no consumer position to hand over', fix });
    else if (s.slot_type !== 'logical' || s.database !== database)
      findings.push({
        severity: 'blocker',
        check,
        object: name,
        message: `replication slot ${name} on the source is ${s.slot_type !== 'logical' ? `a ${s.slot_type} slot` : `a slot of database ${s.database ?? '?'}`}, not a logical slot of ${database}`,
        why: 'only logical slots of the moved database describe changes the target will take over',
        fix: 'list only logical slots of the moved database in cdc.slots',
      });
  }
  const taken = await dstAdmin.query<{ n: string }>(`SELECT slot_name::text AS n FROM pg_replication_slots WHERE slot_name = ANY($1::text[])`, [cdc.slots]);
  for (const { n } of taken.rows)
    findings.push({
      severity: 'blocker',
      check,
      object: n,
      message: `a replication slot named ${n} already exists on the target`,
      why: 'the run creates it at the switch, at the position where the target takes over; an older slot would start elsewhere',
      fix: `drop it on the target if it is not in use: SELECT pg_drop_replication_slot(${quoteLiteral(n)});`,
    });
  const free = await dstAdmin.query<{ free: number }>(`SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int AS free`);
  if (free.rows[0]!.free < cdc.slots.length)
    findings.push({
      severity: 'blocker',
      check,
      object: 'max_replication_slots',
      message: `the target has ${free.rows[0]!.free} free replication slot(s), the plan hands over ${cdc.slots.length}`,
      why: 'the slots are created inside the write-blocked window',
      fix: `raise max_replication_slots on the target (restart needed) to at least ${cdc.slots.length} more than it uses`,
    });
  const plugins = new Set([...(await pluginsFor(src, cdc)).values()].filter((p): p is string => p !== undefined));
  for (const plugin of plugins) {
    const probe = `cutover_cdc_probe_${process.pid}`;
    try {
      await dstAdmin.query('SET statement_timeout = 10000');
      await dstAdmin.query(`SELECT pg_create_logical_replication_slot($1, $2, true)`, [probe, plugin]);
      await dstAdmin.query(`SELECT pg_drop_replication_slot($1)`, [probe]);
    } catch (e) {
      const err = e as { code?: string; message?: string };
      if (err.code === '57014') {
        findings.push({
          severity: 'warning',
          check,
          object: plugin,
          message: `could not make a probe slot with plugin ${plugin} on the target within 10s (a long transaction on the target holds up a new slot)`,
          why: 'the run creates the slots inside the write-blocked window and waits for such transactions too',
          fix: 'end long transactions on the target before the run, then run check again',
        });
      } else {
        findings.push({
          severity: 'blocker',
          check,
          object: plugin,
          message: `the target cannot create a logical slot with plugin ${plugin}: ${err.message ?? String(e)}`,
          why: 'consumers could not go on reading from the target after the switch',
          fix:
            err.code === '55000'
              ? 'set wal_level = logical on the target and restart it'
              : `install the output plugin ${plugin} on the target (e.g. the package that ships it for this PostgreSQL major), or set cdc.plugin`,
        });
      }
    } finally {
      await dstAdmin.query('SET statement_timeout = 0').catch(() => {});
      // A temporary slot ends with its session; dropped here so the session can go on making probes.
      await dstAdmin.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND active_pid = pg_backend_pid()`, [probe]).catch(() => {});
    }
  }
  if (findings.length === 0)
    findings.push({
      severity: 'info',
      check,
      object: cdc.slots.join(', '),
      message: `${cdc.slots.length} slot(s) handed over at the switch: created on the target inside the window, with the source position where each consumer stops`,
      why: 'every committed transaction reaches the consumers once: from the source up to that position, from the target after it',
      fix: '—',
    });
  return findings;
}

/**
 * Inside the window, after the catch-up proof: a logical slot per consumer on the target's moved database. The
 * target holds everything committed on the source up to `sourceStop` and has had no other writes since the
 * proof, so its new slot decodes exactly what commits on the target after the switch (plus the tool's sentinel
 * rows, replicated while the subscription stops). Bounded by `deadline`: creating a slot waits for the
 * transactions running on the target.
 */
export async function createTargetSlots(src: PgClient, dst: PgClient, cdc: CdcPolicy, sourceStop: string, deadline: number, sentinel: string): Promise<CdcSlotHandover[]> {
  const plugins = await pluginsFor(src, cdc);
  const out: CdcSlotHandover[] = [];
  await dst.query(`SET statement_timeout = ${Math.max(1, deadline - Date.now())}`);
  try {
    for (const slot of cdc.slots) {
      const plugin = plugins.get(slot);
      if (plugin === undefined) throw new Error(`replication slot ${slot} is gone from the source, so its plugin is unknown`);
      const { rows } = await dst.query<{ lsn: string }>(`SELECT lsn::text FROM pg_create_logical_replication_slot($1, $2)`, [slot, plugin]);
      out.push({ slot, plugin, sourceStop, targetStart: rows[0]!.lsn, toolTable: sentinel });
    }
  } finally {
    await dst.query('SET statement_timeout = 0').catch(() => {});
  }
  return out;
}

/** Drops the plan's slots on the target (a run rolled back before its point of no return). Returns what it dropped. */
export async function dropTargetSlots(dst: PgClient, cdc: CdcPolicy): Promise<string[]> {
  const { rows } = await dst.query<{ n: string }>(`SELECT slot_name::text AS n FROM pg_replication_slots WHERE slot_name = ANY($1::text[]) AND NOT active ORDER BY 1`, [cdc.slots]);
  for (const { n } of rows) await dst.query(`SELECT pg_drop_replication_slot($1)`, [n]);
  return rows.map((r) => r.n);
}

/** The plan's CDC slots present on the target: leftovers when no run is past its point of no return. */
export async function targetSlotsPresent(dst: PgClient, cdc: CdcPolicy): Promise<string[]> {
  const { rows } = await dst.query<{ n: string }>(`SELECT slot_name::text AS n FROM pg_replication_slots WHERE slot_name = ANY($1::text[]) ORDER BY 1`, [cdc.slots]);
  return rows.map((r) => r.n);
}

/** How far each source slot's consumer has confirmed (for `status`: has it read up to its stop position yet?). */
export async function sourceSlotPositions(src: PgClient, cdc: CdcPolicy): Promise<Record<string, string | null>> {
  const slots = await sourceSlots(src, cdc.slots);
  return Object.fromEntries(cdc.slots.map((n) => [n, slots.get(n)?.confirmed ?? null]));
}
