import { access } from 'node:fs/promises';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { BUILT_CLI, ROOT, ensureBuilt, spawnCli } from '../helpers/built-cli.js';
import { pg15Missing } from '../helpers/pg.js';

describe.skipIf(pg15Missing)('cutover rehearse (built CLI, as a user runs it)', () => {
  beforeAll(ensureBuilt);

  it('runs on a sandbox with zero missing writes and reports the write-blocked window', async () => {
    const r = await spawnCli(['rehearse', '--rows', '5000', '--clients', '3', '--json']);
    expect(r.stderr).toMatch(/fence \(enforced, database scope\)/);
    expect(r.exitCode).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.ok).toBe(true);
    expect(doc.acknowledgedWrites).toBeGreaterThan(0);
    expect(doc.verifiedWrites).toBe(doc.acknowledgedWrites);
    expect(doc.missingWrites).toEqual([]);
    expect(doc.fence.leakCheck.clean).toBe(true);
    expect(doc.writeBlockedMs).toBeGreaterThan(0);
    console.log(`rehearse: write-blocked window ${doc.writeBlockedMs} ms, ${doc.acknowledgedWrites} acknowledged writes verified`);
  });

  it('Ctrl-C (SIGINT) mid-run stops the sandbox server and removes its directory', async () => {
    const child = execa('node', [BUILT_CLI, 'rehearse', '--rows', '5000', '--hold', '30s'], { cwd: ROOT, reject: false });
    let stderr = '';
    const sandboxDir = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no sandbox line in: ${stderr}`)), 60_000);
      child.stderr!.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /sandbox .* in (\S+)/.exec(stderr);
        if (m && /hold read-only/.test(stderr)) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    child.kill('SIGINT');
    const done = await child;
    expect(done.exitCode).toBe(130);
    await expect(access(sandboxDir)).rejects.toThrow();
    const ps = await execa('ps', ['-eo', 'args'], { reject: false });
    expect(ps.stdout).not.toContain(sandboxDir);
  });
});
