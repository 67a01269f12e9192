import { execa } from 'execa';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { missing } from '../helpers/availability.js';
import { findOnPath, startGatedPipeline, type PipeSide, type ScriptedSide } from '../../src/util/subprocess.js';
import { ROOT, ensureBuilt } from '../helpers/built-cli.js';

/** A consumer that copies its stdin to `data` and the first two lines of its script to `script`. */
const consumer = (dir: string) => ({ cmd: 'sh', args: (script: string) => ['-c', `cat > "${dir}/data"; head -n 2 "${script}" > "${dir}/script"`] });

/** A pipe whose producer's args say it all, started and run at once. */
async function gated(producer: PipeSide, consumer: ScriptedSide, script: { prelude: string; commit: string }, opts: { bigBuffers?: boolean } = {}): Promise<string> {
  return (await startGatedPipeline({ ...producer, args: () => producer.args }, consumer, opts)).run(script);
}

const noSetpriv = await missing('setpriv (util-linux)', async () => {
  if (!(await findOnPath('setpriv'))) throw new Error('not on PATH');
});

/** Whether process `pid` still exists (a zombie counts as gone). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  return stat !== '' && !/^\d+ \(.*\) Z/.test(stat);
}

const noStdbuf = await missing('stdbuf (coreutils)', async () => {
  if (!(await findOnPath('stdbuf'))) throw new Error('not on PATH');
});

describe('startGatedPipeline', () => {
  it('writes the commit part of the script only after the producer exited 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gate-test-'));
    await gated({ cmd: 'sh', args: ['-c', 'echo row1; echo row2'] }, consumer(dir), { prelude: 'BEGIN\n', commit: 'COMMIT\n' });
    expect(await readFile(join(dir, 'data'), 'utf8')).toBe('row1\nrow2\n');
    expect(await readFile(join(dir, 'script'), 'utf8')).toBe('BEGIN\nCOMMIT\n');
  });

  it('a producer that dies part-way fails the pipe and its consumer never reads the commit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gate-test-'));
    await expect(gated({ cmd: 'sh', args: ['-c', 'echo row1; echo boom >&2; exit 3'] }, consumer(dir), { prelude: 'BEGIN\n', commit: 'COMMIT\n' })).rejects.toThrow(/sh exited 3: boom/);
    const script = await readFile(join(dir, 'script'), 'utf8').catch(() => '');
    expect(script).not.toMatch(/COMMIT/);
  });

  it.skipIf(noStdbuf)('with big buffers (stdbuf) a large stream arrives whole, a failure still names the producer and holds the commit back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gate-test-'));
    // 3 MB through the pipe: more than the 1 MB buffer, in many writes.
    await gated({ cmd: 'sh', args: ['-c', 'seq 1 400000'] }, consumer(dir), { prelude: 'BEGIN\n', commit: 'COMMIT\n' }, { bigBuffers: true });
    const data = await readFile(join(dir, 'data'), 'utf8');
    expect(data.split('\n').slice(0, 2)).toEqual(['1', '2']);
    expect(data.endsWith('\n400000\n')).toBe(true);
    expect(data.length).toBe(2_688_895);
    expect(await readFile(join(dir, 'script'), 'utf8')).toBe('BEGIN\nCOMMIT\n');
    // Both sides really ran under stdbuf (coreutils: every Debian machine has it).
    const seen = await mkdtemp(join(tmpdir(), 'gate-test-'));
    await gated(
      { cmd: 'sh', args: ['-c', 'echo "$LD_PRELOAD"'] },
      { cmd: 'sh', args: (script: string) => ['-c', `cat > "${seen}/data"; echo "$LD_PRELOAD" >> "${seen}/data"; test -p "${script}"`] },
      { prelude: '', commit: '' },
      { bigBuffers: true },
    );
    expect((await readFile(join(seen, 'data'), 'utf8')).match(/libstdbuf/g)).toHaveLength(2);
    const failing = await mkdtemp(join(tmpdir(), 'gate-test-'));
    await expect(gated({ cmd: 'sh', args: ['-c', 'seq 1 1000; echo boom >&2; exit 3'] }, consumer(failing), { prelude: 'BEGIN\n', commit: 'COMMIT\n' }, { bigBuffers: true })).rejects.toThrow(/^sh exited 3: boom/);
    expect(await readFile(join(failing, 'script'), 'utf8').catch(() => '')).not.toMatch(/COMMIT/);
  });

  it('started ahead: both sides wait for their scripts, the producer reads its own, the commit still waits for its exit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gate-test-'));
    // A producer that prints its script's lines up to "q" (psql: the script's own \q ends it).
    const producer = { cmd: 'sh', args: (script: string) => ['-c', `echo $$ > "${dir}/producer"; while read -r l; do [ "$l" = q ] && exit 0; echo "$l"; done < "${script}"`] };
    const pair = await startGatedPipeline(producer, consumer(dir));
    // Nothing has moved before run: the producer waits for its script.
    for (let i = 0; i < 100 && !(await readFile(join(dir, 'producer'), 'utf8').catch(() => '')); i++) await new Promise((r) => setTimeout(r, 20));
    expect(await alive(Number(await readFile(join(dir, 'producer'), 'utf8')))).toBe(true);
    expect(await readFile(join(dir, 'data'), 'utf8').catch(() => '')).toBe('');
    await pair.run({ producer: 'row1\nrow2\nq\n', prelude: 'BEGIN\n', commit: 'COMMIT\n' });
    expect(await readFile(join(dir, 'data'), 'utf8')).toBe('row1\nrow2\n');
    expect(await readFile(join(dir, 'script'), 'utf8')).toBe('BEGIN\nCOMMIT\n');
    // A producer script that fails holds the commit back, as with fixed args.
    const failing = await mkdtemp(join(tmpdir(), 'gate-test-'));
    const bad = await startGatedPipeline({ cmd: 'sh', args: (script: string) => ['-c', `read -r l < "${script}"; echo "$l"; echo boom >&2; exit 3`] }, consumer(failing));
    await expect(bad.run({ producer: 'row1\n', prelude: 'BEGIN\n', commit: 'COMMIT\n' })).rejects.toThrow(/sh exited 3: boom/);
    expect(await readFile(join(failing, 'script'), 'utf8').catch(() => '')).not.toMatch(/COMMIT/);
  });

  it('a pair started ahead and discarded: both sides end, nothing was committed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gate-test-'));
    const pair = await startGatedPipeline(
      { cmd: 'sh', args: () => ['-c', `echo $$ > "${dir}/producer"; exec sleep 60`] },
      { cmd: 'sh', args: (script: string) => ['-c', `echo $$ > "${dir}/consumer"; cat "${script}" > "${dir}/script"`] },
    );
    const written = async (name: string) => (await readFile(join(dir, name), 'utf8').catch(() => '')).trim();
    for (let i = 0; i < 100 && ((await written('producer')) === '' || (await written('consumer')) === ''); i++) await new Promise((r) => setTimeout(r, 20));
    const pids = [Number(await written('producer')), Number(await written('consumer'))];
    expect(await Promise.all(pids.map(alive))).toEqual([true, true]);
    await pair.discard();
    expect(await Promise.all(pids.map(alive))).toEqual([false, false]);
    expect(await written('script')).toBe('');
  });

  it.skipIf(noSetpriv)('the process running it killed (kill -9): both sides die with it, and a consumer that had not opened its script yet does not wait forever', async () => {
    await ensureBuilt();
    const dir = await mkdtemp(join(tmpdir(), 'gate-test-'));
    // The consumer writes its pid and then waits without ever opening the script: the case that hung before.
    const program = `
      import { startGatedPipeline } from ${JSON.stringify(`${ROOT}dist/src/util/subprocess.js`)};
      const pair = await startGatedPipeline(
        { cmd: 'sh', args: () => ['-c', 'echo $$ > ${dir}/producer; exec sleep 60'] },
        { cmd: 'sh', args: (script) => ['-c', 'readlink ' + script + ' > ${dir}/script.path; echo $$ > ${dir}/consumer; exec sleep 60'] },
        { bigBuffers: true },
      );
      await pair.run({ prelude: 'BEGIN\\n', commit: 'COMMIT\\n' });`;
    const runner = execa('node', ['--input-type=module', '-e', program], { reject: false });
    // Each file is written whole before it is read: wait for the three to have content.
    const written = async (name: string) => (await readFile(join(dir, name), 'utf8').catch(() => '')).trim();
    for (let i = 0; i < 200 && (await Promise.all(['producer', 'consumer', 'script.path'].map(written))).some((t) => t === ''); i++) await new Promise((r) => setTimeout(r, 25));
    const producer = Number(await written('producer'));
    const consumer = Number(await written('consumer'));
    try {
      expect(producer).toBeGreaterThan(0);
      expect(consumer).toBeGreaterThan(0);
      expect([await alive(producer), await alive(consumer)]).toEqual([true, true]);
      // The script reaches the consumer as an open FIFO whose name is already gone: nothing left behind.
      expect(await written('script.path')).toMatch(/cutover-gate-.*\/script \(deleted\)$/);
      runner.kill('SIGKILL');
      await runner;
      for (let i = 0; i < 100 && ((await alive(producer)) || (await alive(consumer))); i++) await new Promise((r) => setTimeout(r, 20));
      expect([await alive(producer), await alive(consumer)]).toEqual([false, false]);
    } finally {
      runner.kill('SIGKILL');
      for (const pid of [producer, consumer]) if (pid > 0 && (await alive(pid))) process.kill(pid, 'SIGKILL');
    }
  });
});
