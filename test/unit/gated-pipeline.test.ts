import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatedPipeline } from '../../src/util/subprocess.js';

/** A consumer that copies its stdin to `data` and the first two lines of its script to `script`. */
const consumer = (dir: string) => ({ cmd: 'sh', args: (script: string) => ['-c', `cat > "${dir}/data"; head -n 2 "${script}" > "${dir}/script"`] });

describe('gatedPipeline', () => {
  it('writes the commit part of the script only after the producer exited 0', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gate-test-'));
    await gatedPipeline({ cmd: 'sh', args: ['-c', 'echo row1; echo row2'] }, consumer(dir), { prelude: 'BEGIN\n', commit: 'COMMIT\n' });
    expect(await readFile(join(dir, 'data'), 'utf8')).toBe('row1\nrow2\n');
    expect(await readFile(join(dir, 'script'), 'utf8')).toBe('BEGIN\nCOMMIT\n');
  });

  it('a producer that dies part-way fails the pipe and its consumer never reads the commit', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gate-test-'));
    await expect(gatedPipeline({ cmd: 'sh', args: ['-c', 'echo row1; echo boom >&2; exit 3'] }, consumer(dir), { prelude: 'BEGIN\n', commit: 'COMMIT\n' })).rejects.toThrow(/sh exited 3: boom/);
    const script = await readFile(join(dir, 'script'), 'utf8').catch(() => '');
    expect(script).not.toMatch(/COMMIT/);
  });
});
