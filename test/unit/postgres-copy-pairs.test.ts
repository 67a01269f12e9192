import { chmod, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CopyPairs } from '../../adapters/postgres/postgres-snapshot-copy.js';
import { parseDbUrl } from '../../src/util/db-url.js';

/** Whether process `pid` still exists (a zombie counts as gone). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^\d+ \(.*\) Z/.test(stat);
}

/** A stand-in for psql that notes its pid and waits: pairs are started, never run. */
async function fakePsql(): Promise<{ psql: string; pids: () => Promise<number[]> }> {
  const dir = await mkdtemp(join(tmpdir(), 'copy-pairs-test-'));
  const psql = join(dir, 'psql');
  await writeFile(psql, `#!/bin/sh\necho $$ >> "${dir}/pids"\nexec sleep 60\n`);
  await chmod(psql, 0o755);
  const pids = async () => (await readFile(join(dir, 'pids'), 'utf8').catch(() => '')).split('\n').filter(Boolean).map(Number);
  return { psql, pids };
}

const endpoints = (psql: string) => ({
  psql,
  source: parseDbUrl('postgres://app@127.0.0.1:1/db'),
  target: parseDbUrl('postgres://app@127.0.0.1:2/db'),
  database: 'db',
  targetOptions: '',
  encoding: 'UTF8',
  majors: { source: 15, target: 17 },
});

async function until(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 150 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
}

describe('the snapshot copy starts its first psql pairs ahead', () => {
  it('a pair started ahead is taken as it is while fresh; discard ends those never taken', async () => {
    const { psql, pids } = await fakePsql();
    const pairs = new CopyPairs(endpoints(psql), 2);
    await until(async () => (await pids()).length === 4);
    const first = await pairs.take(1024);
    // No new process: the pair was one of those started ahead.
    expect(await pids()).toHaveLength(4);
    await pairs.discard();
    await first.discard();
    const all = await pids();
    await until(async () => !(await Promise.all(all.map(alive))).some(Boolean));
    expect(await Promise.all(all.map(alive))).toEqual([false, false, false, false]);
  });

  it('pairs left waiting past their freshness (sessions an idle cutoff may have dropped) are ended, and a new one is started', async () => {
    const { psql, pids } = await fakePsql();
    const pairs = new CopyPairs(endpoints(psql), 2, 50);
    await until(async () => (await pids()).length === 4);
    const ahead = await pids();
    await new Promise((r) => setTimeout(r, 100));
    const fresh = await pairs.take(1024);
    await until(async () => (await pids()).length === 6 && !(await Promise.all(ahead.map(alive))).some(Boolean));
    expect(await pids()).toHaveLength(6);
    expect(await Promise.all(ahead.map(alive))).toEqual([false, false, false, false]);
    await fresh.discard();
    await pairs.discard();
  });
});
