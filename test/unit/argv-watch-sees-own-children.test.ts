import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { allCmdlines } from '../helpers/faults.js';

describe('the argv watch of the secrets tests', () => {
  it("sees the processes this test starts and their children, not other processes' argv", async () => {
    const marker = `argv-marker-${process.pid}-${Date.now()}`;
    // A grandchild: the shell starts sleep, as the tool starts mariadb-dump or pg_dump.
    const child = spawn('sh', ['-c', `sh -c 'sleep 5; : ${marker}-grandchild'; :`], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const mine = await allCmdlines();
      expect(mine.some((l) => l.includes(`${marker}-grandchild`))).toBe(true);
      // PID 1's argv is on the machine but not below this process.
      const init = await allCmdlines(1);
      expect(init.some((l) => l.includes(`${marker}-grandchild`))).toBe(true);
      expect(await allCmdlines(child.pid! + 1_000_000)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
