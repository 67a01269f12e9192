import type { Writable } from 'node:stream';
import { DefaultRenderer, Listr, ListrLogger, ProcessOutput, createWritable } from 'listr2';
import type { CutoverEvent } from '../index.js';
import type { CliIO } from './io.js';

/**
 * listr2 picks its live renderer only when stdout is a terminal; here it draws on stderr (stdout carries
 * --json), so the choice is made from stderr (CliIO.isTTY) instead.
 */
export class StderrLiveRenderer extends DefaultRenderer {
  static override nonTTY = true;
}

/** A listr2 logger writing to stderr: the terminal itself, or CliIO.err (pipes, tests). */
export function stderrLogger(io: CliIO): ListrLogger {
  const stream = io.isTTY ? process.stderr : (createWritable((chunk) => io.err(chunk)) as Writable as NodeJS.WriteStream);
  return new ListrLogger({ processOutput: new ProcessOutput(stream, stream) });
}

/** A bar of `width` cells for done/total. */
export function progressBar(done: number, total: number, width = 20): string {
  const filled = total > 0 ? Math.min(width, Math.round((done / total) * width)) : 0;
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
}

/**
 * Runs `work` under a live listr2 view on a terminal: one task per step as it begins, its latest message (and a
 * bar when the event carries a copy's bytes) as the task's output, ✔/✖ when it ends. The work drives; the view
 * only shows it, so its outcome is the work's.
 */
export async function withLiveSteps<T>(io: CliIO, scrub: (t: string) => string, work: (onEvent: (e: CutoverEvent) => void) => Promise<T>): Promise<T> {
  const logger = stderrLogger(io);
  type Live = { output(line: string): void; title(t: string): void; end(e?: Error): void };
  const steps = new Map<string, Live>();
  const shown: Promise<unknown>[] = [];
  const begin = (step: string, message: string): Live => {
    let end!: (e?: Error) => void;
    const ended = new Promise<void>((res, rej) => (end = (e) => (e ? rej(e) : res())));
    ended.catch(() => {});
    const live: Live = { output: () => {}, title: () => {}, end: (e) => end(e) };
    // What arrives before listr2 runs the task is kept for it.
    const pending: string[] = [];
    let title: string | undefined;
    live.output = (line) => pending.push(line);
    live.title = (t) => (title = t);
    const list = new Listr(
      [
        {
          title: scrub(`${step}: ${message}`),
          task: async (_ctx: unknown, task: { title: string; output: string }) => {
            live.output = (line) => (task.output = scrub(line));
            live.title = (t) => (task.title = scrub(t));
            pending.splice(0).forEach(live.output);
            if (title !== undefined) live.title(title);
            await ended;
          },
          rendererOptions: { persistentOutput: false },
        },
      ],
      { exitOnError: true, registerSignalListeners: false, renderer: StderrLiveRenderer, rendererOptions: { logger } },
    );
    shown.push(list.run().catch(() => {}));
    steps.set(step, live);
    return live;
  };
  const onEvent = (e: CutoverEvent): void => {
    if (e.status === 'begin') {
      begin(e.step, e.message);
      return;
    }
    // An event of a step whose begin was not seen still gets its task.
    const live = steps.get(e.step) ?? begin(e.step, e.message);
    if (e.status === 'info') {
      const p = e.progress;
      live.output(p?.bytesTotal ? `${progressBar(p.bytesDone ?? 0, p.bytesTotal)} ${e.message}` : e.message);
    } else {
      live.title(`${e.step}: ${e.message}`);
      steps.delete(e.step);
      live.end(e.status === 'fail' ? new Error(e.message) : undefined);
    }
  };
  try {
    return await work(onEvent);
  } finally {
    for (const live of steps.values()) live.end(new Error('stopped'));
    await Promise.all(shown);
  }
}
