import { createHash } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureDirDurably, writeFileAtomic } from '../util/atomic-file.js';
import type { Engine } from '../util/db-url.js';
import type { FenceTarget, PriorState, ReadOnlyMode } from '../readonly/types.js';

/** What `readonly on` changed, kept on disk so `off` from another process can put it back. */
export interface FenceRecord {
  version: 1;
  engine: Engine;
  /** Redacted URL, for humans. */
  server: string;
  serverId: string;
  scope: FenceTarget['scope'];
  name?: string;
  mode: ReadOnlyMode;
  fencedAt: string;
  prior: PriorState;
}

/**
 * Where fence records are kept: files in a state dir (FenceStore), or the control database of `state:
 * postgres://...` (a wave runner that takes over a dead runner's fenced tenant must find what it changed).
 */
export interface FenceRecords {
  load(serverId: string, target: FenceTarget): Promise<FenceRecord | undefined>;
  /** Durable before it returns: the fence changes the server only after. */
  save(record: FenceRecord): Promise<void>;
  remove(serverId: string, target: FenceTarget): Promise<void>;
}

/** One key per fenced object (server, scope, name), the same for every store. */
export function fenceRecordKey(serverId: string, target: FenceTarget): string {
  return createHash('sha256')
    .update(JSON.stringify([serverId, target.scope, target.name ?? '']))
    .digest('hex')
    .slice(0, 20);
}

export class FenceStore implements FenceRecords {
  constructor(readonly dir: string) {}

  private file(serverId: string, target: FenceTarget): string {
    return join(this.dir, `fence-${fenceRecordKey(serverId, target)}.json`);
  }

  async load(serverId: string, target: FenceTarget): Promise<FenceRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.file(serverId, target), 'utf8')) as FenceRecord;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Atomic and durable; 0600 because it names servers and roles. */
  async save(record: FenceRecord): Promise<void> {
    await ensureDirDurably(this.dir);
    await writeFileAtomic(this.file(record.serverId, record), JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
  }

  async remove(serverId: string, target: FenceTarget): Promise<void> {
    await rm(this.file(serverId, target), { force: true });
  }
}
