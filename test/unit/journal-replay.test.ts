import { mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NeedsOperatorError } from '../../src/errors.js';
import { CUTOVER_STEPS, Journal, ROLLBACK_STEPS, journalPath, replayJournal, replayText } from '../../src/engine/journal.js';
import { PlanLock } from '../../src/engine/lock.js';

const PLAN = 'shop-0123456789ab';
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cutover-journal-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function line(seq: number, step: string, status: string, token = 1): string {
  return JSON.stringify({ seq, step, status, at: '2024-01-01T00:00:00.000Z', token }) + '\n';
}

describe('journal', () => {
  it('lists the DESIGN.md steps in order, plus rollback steps', () => {
    expect(CUTOVER_STEPS).toEqual(['preflight', 'sync', 'hold', 'fence', 'catch-up', 'sequences', 'verify', 'cdc-handover', 'point-of-no-return', 'repoint', 'lift', 'cleanup', 'reverse', 'report']);
    expect(ROLLBACK_STEPS).toEqual(['unfence', 'route-back']);
  });

  it('appends numbered, durable records that replay to the last ok step', async () => {
    const lock = await PlanLock.acquire(dir, PLAN);
    const j = await Journal.open(lock);
    await j.begin('preflight');
    await j.ok('preflight', { findings: 0 });
    await j.begin('sync');
    await j.close();
    const r = await replayJournal(dir, PLAN);
    expect(r.records.map((x) => [x.seq, x.step, x.status, x.token])).toEqual([
      [1, 'preflight', 'begin', lock.token],
      [2, 'preflight', 'ok', lock.token],
      [3, 'sync', 'begin', lock.token],
    ]);
    expect(r.records[1]!.data).toEqual({ findings: 0 });
    expect(r.lastOk).toBe('preflight');
    expect(r.unfinished.map((x) => x.step)).toEqual(['sync']);
    expect(r.pointOfNoReturn).toBe(false);
  });

  it('reports the point of no return only once it is ok', () => {
    expect(replayText(line(1, 'point-of-no-return', 'begin')).pointOfNoReturn).toBe(false);
    expect(replayText(line(1, 'point-of-no-return', 'begin') + line(2, 'point-of-no-return', 'ok')).pointOfNoReturn).toBe(true);
  });

  it('treats a failed step as finished, not in flight', () => {
    const r = replayText(line(1, 'fence', 'begin') + line(2, 'fence', 'fail') + line(3, 'unfence', 'begin') + line(4, 'unfence', 'ok'));
    expect(r.unfinished).toEqual([]);
    expect(r.lastOk).toBe('unfence');
  });

  it('tolerates a torn last line and continues after it on the next open', async () => {
    await writeFile(journalPath(dir, PLAN), line(1, 'preflight', 'begin') + line(2, 'preflight', 'ok') + '{"seq":3,"step":"sy');
    const r = await replayJournal(dir, PLAN);
    expect(r.tornTail).toBe(true);
    expect(r.records).toHaveLength(2);
    const lock = await PlanLock.acquire(dir, PLAN);
    const j = await Journal.open(lock);
    await j.begin('sync');
    await j.close();
    const text = await readFile(journalPath(dir, PLAN), 'utf8');
    expect(
      text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l).seq),
    ).toEqual([1, 2, 3]);
    expect((await replayJournal(dir, PLAN)).tornTail).toBe(false);
  });

  it('refuses a journal damaged before its last line', () => {
    expect(() => replayText(line(1, 'preflight', 'begin') + 'garbage\n' + line(2, 'preflight', 'ok'))).toThrow(NeedsOperatorError);
    expect(() => replayText(line(1, 'preflight', 'begin') + line(3, 'preflight', 'ok'))).toThrow(/seq 3, expected 2/);
    expect(() => replayText(line(1, 'teleport', 'begin') + line(2, 'preflight', 'ok'))).toThrow(/line 1 is not a valid journal record/);
  });

  it('redacts secrets from record data', async () => {
    const lock = await PlanLock.acquire(dir, PLAN);
    const j = await Journal.open(lock, { secrets: ['hunter2'] });
    await j.ok('sync', { url: 'postgres://app:pw1@h/db', note: 'used hunter2', password: 'x' });
    await j.close();
    const text = await readFile(journalPath(dir, PLAN), 'utf8');
    expect(text).not.toMatch(/pw1|hunter2|"x"/);
    expect(text).toContain('postgres://app:***@h/db');
  });

  it('refuses appends from a process whose lock was taken over', async () => {
    const old = await PlanLock.acquire(dir, PLAN);
    const oldJournal = await Journal.open(old);
    await oldJournal.begin('fence');
    // --force takes over only a holder it cannot check (another host): make the old holder look like one.
    const held = JSON.parse(await readFile(old.path, 'utf8'));
    await writeFile(old.path, JSON.stringify({ ...held, hostname: 'elsewhere.example' }) + '\n');
    const usurper = await PlanLock.acquire(dir, PLAN, { force: true });
    await expect(oldJournal.ok('fence')).rejects.toThrow(NeedsOperatorError);
    const j = await Journal.open(usurper);
    await j.fail('fence', { reason: 'taken over' });
    await Promise.all([j.close(), oldJournal.close()]);
    const r = await replayJournal(dir, PLAN);
    expect(r.records.map((x) => [x.status, x.token])).toEqual([
      ['begin', old.token],
      ['fail', usurper.token],
    ]);
  });

  it('refuses to open when the journal holds a newer token than the lock', async () => {
    await appendFile(journalPath(dir, PLAN), line(1, 'preflight', 'begin', 99));
    const lock = await PlanLock.acquire(dir, PLAN);
    await expect(Journal.open(lock)).rejects.toThrow(/token 99, newer than this process's lock token 1/);
  });
});
