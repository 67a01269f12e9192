import type { Writable } from 'node:stream';
import { DefaultRenderer, Listr, ListrLogger, ProcessOutput, createWritable } from 'listr2';
import type { CutoverEvent } from '../index.js';
import type { CliIO } from './io.js';

/** Draws on stderr even when stdout is not a terminal (stdout carries --json). */
class StderrLiveRenderer extends DefaultRenderer {
  static override nonTTY = true;
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
  const stream = io.isTTY ? process.stderr : (createWritable((chunk) => io.err(chunk)) as Writable as NodeJS.WriteStream);
  const logger = new ListrLogger({ processOutput: new ProcessOutput(stream, stream) });
  type Live = { output(line: string): void; title(t: string): void; end(e?: Error): void };
  const steps = new Map<string, Live>();
  const shown: Promise<unknown>[] = [];
  const begin = (step: string, message: string): Live => {
    let end!: (e?: Error) => void;
    const ended = new Promise<void>((res, rej) => (end = (e) => (e ? rej(e) : res())));
    ended.catch(() => {});
    const live: Live = { output: () => {}, title: () => {}, end: (e) => end(e) };
    const pending: string[] = [];
    live.output = (line) => pending.push(line);
    const list = new Listr(
      [
        {
          title: scrub(`${step}: ${message}`),
          task: async (_ctx: unknown, task: { title: string; output: string }) => {
            live.output = (line) => (task.output = scrub(line));
            live.title = (t) => (task.title = scrub(t));
            pending.splice(0).forEach(live.output);
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
    const live = steps.get(e.step) ?? (e.status === 'begin' ? undefined : begin(e.step, e.message));
    if (e.status === 'begin') {
      begin(e.step, e.message);
      return;
    }
    if (!live) return;
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
