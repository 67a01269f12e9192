import { constants } from 'node:fs';
import { lstat, open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { NeedsOperatorError } from '../errors.js';
import { fsyncDir } from '../util/atomic-file.js';
import { redactDeep } from '../util/redact.js';
import type { PlanLock } from './lock.js';

/** The cutover sequence of DESIGN.md, in order. */
export const CUTOVER_STEPS = ['preflight', 'sync', 'hold', 'fence', 'catch-up', 'sequences', 'verify', 'cdc-handover', 'point-of-no-return', 'repoint', 'lift', 'cleanup', 'reverse', 'report'] as const;
/** Steps of a rollback (only before the point of no return). */
export const ROLLBACK_STEPS = ['unfence', 'route-back'] as const;
/**
 * `cutover finalize`, journaled in the revert plan's journal (`<id>-revert`) under the revert's locks: a revert
 * that finds it there refuses, and a finalize refuses a revert under way.
 */
export const FINALIZE_STEPS = ['finalize'] as const;

export type CutoverStep = (typeof CUTOVER_STEPS)[number];
export type RollbackStep = (typeof ROLLBACK_STEPS)[number];
export type FinalizeStep = (typeof FINALIZE_STEPS)[number];
export type JournalStep = CutoverStep | RollbackStep | FinalizeStep;
export type StepStatus = 'begin' | 'ok' | 'fail';
export interface AppendOptions {
  /** false: queued until the next durable append, flush or close (default true). */
  durable?: boolean;
}

/** Every step a journal may hold, in a file or in the control database. */
export const JOURNAL_STEPS: ReadonlySet<string> = new Set([...CUTOVER_STEPS, ...ROLLBACK_STEPS, ...FINALIZE_STEPS]);
const STATUSES: ReadonlySet<string> = new Set(['begin', 'ok', 'fail']);

export interface JournalRecord {
  seq: number;
  step: JournalStep;
  status: StepStatus;
  /** ISO time of the append. */
  at: string;
  /** Fencing token of the lock holder that wrote it. */
  token: number;
  data?: Record<string, unknown>;
}

export interface JournalReplay {
  records: JournalRecord[];
  /** The step of the last `ok` record. */
  lastOk?: JournalStep;
  /** `point-of-no-return` finished: from here only forward (resume), never rollback. */
  pointOfNoReturn: boolean;
  /** Steps that began and have neither `ok` nor `fail`: the writer died inside them. */
  unfinished: JournalRecord[];
  /** The last line was cut short by a crash mid-write and is ignored. */
  tornTail: boolean;
  /** Highest fencing token seen (0 for an empty journal). */
  maxToken: number;
  /** Byte length of the intact records: where the next append goes. */
  intactBytes: number;
}

export function journalPath(stateDir: string, planId: string): string {
  return join(stateDir, `${planId}.journal`);
}

function isRecord(v: unknown): v is JournalRecord {
  const r = v as Partial<JournalRecord> | null;
  return (
    !!r &&
    typeof r === 'object' &&
    Number.isInteger(r.seq) &&
    typeof r.step === 'string' &&
    JOURNAL_STEPS.has(r.step) &&
    typeof r.status === 'string' &&
    STATUSES.has(r.status) &&
    typeof r.at === 'string' &&
    Number.isInteger(r.token) &&
    (r.data === undefined || (typeof r.data === 'object' && r.data !== null))
  );
}

/**
 * Derives the state of a journal from its text. Only the last line may be damaged (a crash mid-append);
 * damage anywhere else means the file was edited or the disk lied, which the tool will not guess about.
 */
export function replayText(text: string, file = 'journal'): JournalReplay {
  const records: JournalRecord[] = [];
  const lines = text.split('\n');
  let tornTail = false;
  let intactBytes = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const last = i === lines.length - 1;
    if (last) {
      // Every append ends with a newline: text after the last one is a write the crash cut short.
      tornTail = line !== '';
      break;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    if (!isRecord(parsed)) {
      throw new NeedsOperatorError('needs-operator', `${file} line ${i + 1} is not a valid journal record`, 'the journal was edited or damaged; inspect it before running resume or rollback');
    }
    const expectedSeq = (records.at(-1)?.seq ?? 0) + 1;
    if (parsed.seq !== expectedSeq) {
      throw new NeedsOperatorError('needs-operator', `${file} line ${i + 1} has seq ${parsed.seq}, expected ${expectedSeq}`, 'the journal was edited or damaged; inspect it before running resume or rollback');
    }
    records.push(parsed);
    intactBytes += Buffer.byteLength(line) + 1;
  }
  return { ...replayRecords(records), tornTail, intactBytes };
}

/** The state a sequence of intact records describes (any store: file lines or control-database rows). */
export function replayRecords(records: JournalRecord[]): Omit<JournalReplay, 'tornTail' | 'intactBytes'> {
  const open = new Map<JournalStep, JournalRecord>();
  let lastOk: JournalStep | undefined;
  let pointOfNoReturn = false;
  let maxToken = 0;
  for (const r of records) {
    maxToken = Math.max(maxToken, r.token);
    if (r.status === 'begin') {
      open.set(r.step, r);
      continue;
    }
    open.delete(r.step);
    if (r.status === 'ok') {
      lastOk = r.step;
      if (r.step === 'point-of-no-return') pointOfNoReturn = true;
    }
  }
  return { records, ...(lastOk ? { lastOk } : {}), pointOfNoReturn, unfinished: [...open.values()], maxToken };
}

/** Reads a plan's journal without taking the lock (for `status`). A missing journal is an empty one. */
export async function replayJournal(stateDir: string, planId: string): Promise<JournalReplay> {
  const path = journalPath(stateDir, planId);
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return '';
    throw e;
  });
  return replayText(text, path);
}

/** The record that follows `records`: next sequence number, the writer's token, secrets redacted from its data. */
export function nextRecord(records: readonly JournalRecord[], token: number, step: JournalStep, status: StepStatus, data: Record<string, unknown> | undefined, secrets: readonly string[]): JournalRecord {
  return {
    seq: (records.at(-1)?.seq ?? 0) + 1,
    step,
    status,
    at: new Date().toISOString(),
    token,
    ...(data !== undefined ? { data: redactDeep(data, secrets) } : {}),
  };
}

/** The append side of a plan's journal. Only the lock holder writes; every append is durable before it returns. */
export class Journal {
  private constructor(
    private readonly lock: PlanLock,
    private readonly fh: FileHandle,
    private readonly records: JournalRecord[],
    private intactBytes: number,
    private readonly secrets: readonly string[],
  ) {}

  /** Lines of records appended with `durable: false`, not yet on disk. */
  private queued: string[] = [];
  private writing: Promise<void> = Promise.resolve();

  get path(): string {
    return journalPath(this.lock.stateDir, this.lock.planId);
  }

  /** What the journal says now, including this process's appends. */
  get state(): JournalReplay {
    return { ...replayRecords([...this.records]), tornTail: false, intactBytes: this.intactBytes };
  }

  /**
   * Opens (creating if needed) the journal of the locked plan. A torn last line is cut off, so the next
   * record starts on a line of its own. `secrets` are scrubbed from every record's data.
   */
  static async open(lock: PlanLock, opts: { secrets?: readonly string[] } = {}): Promise<Journal> {
    await lock.assertCurrent();
    const path = journalPath(lock.stateDir, lock.planId);
    const st = await lstat(path).catch(() => undefined);
    if (st && !st.isFile()) {
      throw new NeedsOperatorError(
        'needs-operator',
        `${path} is not a regular file (${st.isSymbolicLink() ? 'a symlink' : 'something else'}): refusing to write the journal through it`,
        'inspect the state dir; someone else may have written to it',
      );
    }
    const existed = st !== undefined;
    const replay = await replayJournal(lock.stateDir, lock.planId);
    if (replay.maxToken > lock.token) {
      throw new NeedsOperatorError(
        'locked',
        `${path} holds records of token ${replay.maxToken}, newer than this process's lock token ${lock.token}`,
        `the token counter (${lock.planId}.token) was reset; restore it to at least ${replay.maxToken}`,
      );
    }
    // O_NOFOLLOW: a symlink swapped in after the check above is refused by the kernel, not followed.
    const flags = constants.O_RDWR | constants.O_NOFOLLOW | (existed ? 0 : constants.O_CREAT | constants.O_EXCL);
    const fh = await open(path, flags, 0o600);
    try {
      if (replay.tornTail) {
        await fh.truncate(replay.intactBytes);
        await fh.sync();
      }
      if (!existed) await fsyncDir(lock.stateDir);
    } catch (e) {
      await fh.close();
      throw e;
    }
    return new Journal(lock, fh, replay.records, replay.intactBytes, opts.secrets ?? []);
  }

  /**
   * `durable: false` queues the record: the next durable append (or flush/close) writes it with its own line in
   * one write and one fsync. For records that order nothing irreversible: the write-blocked window then pays
   * one fsync per step that must be on disk before it acts, not two per step.
   */
  begin(step: JournalStep, data?: Record<string, unknown>, opts: AppendOptions = {}): Promise<JournalRecord> {
    return this.append(step, 'begin', data, opts);
  }

  ok(step: JournalStep, data?: Record<string, unknown>, opts: AppendOptions = {}): Promise<JournalRecord> {
    return this.append(step, 'ok', data, opts);
  }

  fail(step: JournalStep, data?: Record<string, unknown>): Promise<JournalRecord> {
    return this.append(step, 'fail', data);
  }

  /** Appends one record; a durable one is fsynced with every queued record before it. Refused once this process's lock was taken over. */
  async append(step: JournalStep, status: StepStatus, data?: Record<string, unknown>, opts: AppendOptions = {}): Promise<JournalRecord> {
    const record = nextRecord(this.records, this.lock.token, step, status, data, this.secrets);
    // A durable record is refused before it is queued, so a taken-over process leaves nothing behind to write.
    if (opts.durable !== false) await this.lock.assertCurrent();
    this.records.push(record);
    this.queued.push(JSON.stringify(record) + '\n');
    if (opts.durable !== false) await this.write();
    return record;
  }

  /** Writes and fsyncs the queued records (nothing to do when none are queued). */
  async flush(): Promise<void> {
    if (this.queued.length === 0) return;
    await this.lock.assertCurrent();
    await this.write();
  }

  /**
   * One write at a time, each taking what is queued when it starts: the run lets a durable record's fsync overlap
   * its next step, so two appends may be in flight together.
   */
  private write(): Promise<void> {
    const next = this.writing.then(() => this.writeQueued());
    // A failed write fails its own append; the next one starts afresh from what is still queued.
    this.writing = next.catch(() => {});
    return next;
  }

  private async writeQueued(): Promise<void> {
    const n = this.queued.length;
    if (n === 0) return;
    const text = this.queued.join('');
    await this.fh.write(text, this.intactBytes, 'utf8');
    await this.fh.datasync();
    this.intactBytes += Buffer.byteLength(text);
    this.queued.splice(0, n);
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      await this.fh.close();
    }
  }
}
