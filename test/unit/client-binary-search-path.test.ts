import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PreflightError } from '../../src/errors.js';
import { clientBinaryMajor, findClientBinary } from '../../adapters/postgres/postgres-binaries.js';

let root: string;
let debianRoot: string;
let onPath: string;
let explicit: string;

/** An executable that answers `--version` the way PostgreSQL's client tools do. */
async function tool(dir: string, name: string, version: string, mode = 0o755): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  await writeFile(path, `#!/bin/sh\necho "${name} (PostgreSQL) ${version}"\n`, { mode });
  return path;
}

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'cutover-client-bin-'));
  debianRoot = join(root, 'usr-lib-postgresql');
  onPath = join(root, 'path-bin');
  explicit = join(root, 'explicit');
  await mkdir(debianRoot);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('findClientBinary: explicit dir, then Debian versioned dirs, then PATH', () => {
  it("takes Debian's newest major before PATH, and the explicit dir before both", async () => {
    await tool(join(debianRoot, '15', 'bin'), 'pg_dump', '15.8');
    const newest = await tool(join(debianRoot, '17', 'bin'), 'pg_dump', '17.2');
    await tool(onPath, 'pg_dump', '18.1');
    const mine = await tool(explicit, 'pg_dump', '16.4');
    expect(await findClientBinary('pg_dump', { debianRoot, path: `/nonexistent:${onPath}` })).toBe(newest);
    expect(await findClientBinary('pg_dump', { dir: explicit, debianRoot, path: onPath })).toBe(mine);
  });

  it('finds a tool only on PATH (no Debian dirs), and its major comes from --version', async () => {
    const pgbench = await tool(onPath, 'pgbench', '18.1');
    expect(await findClientBinary('pgbench', { debianRoot: join(root, 'absent'), path: `${join(root, 'empty')}::${onPath}` })).toBe(pgbench);
    expect(await clientBinaryMajor(pgbench)).toBe(18);
  });

  it('skips a Debian major older than needed for a newer one on PATH; with none new enough, the first found (the caller names its major)', async () => {
    const old = await tool(join(debianRoot, '15', 'bin'), 'pg_dump', '15.8');
    const newer = await tool(onPath, 'pg_dump', '18.1');
    expect(await findClientBinary('pg_dump', { debianRoot, path: onPath, minMajor: 17 })).toBe(newer);
    expect(await findClientBinary('pg_dump', { debianRoot, path: onPath, minMajor: 15 })).toBe(old);
    expect(await findClientBinary('pg_dump', { debianRoot, path: onPath, minMajor: 19 })).toBe(old);
  });

  it('ignores a file that is not executable and throws a PreflightError naming the package when nothing is found', async () => {
    await tool(onPath, 'psql', '17.2', 0o644);
    const err = await findClientBinary('psql', { debianRoot, path: onPath }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PreflightError);
    expect(`${(err as PreflightError).message} ${(err as PreflightError).hint}`).toMatch(/psql not found.*postgresql-client/s);
  });
});
