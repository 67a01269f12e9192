import { Listr, SimpleRenderer } from 'listr2';
import { REHEARSE_PHASES, type RehearseEvent, type RehearsePhase } from '../index.js';
import type { CliIO } from './io.js';
import { StderrLiveRenderer, stderrLogger } from './live-steps.js';

const TITLES: Record<RehearsePhase, string> = {
  servers: 'start the sandbox servers',
  data: 'load the sample dataset',
  workload: 'start the workload',
  sync: 'sync the target',
  cutover: 'cut over',
  drain: 'keep the workload running on the target',
  revert: 'revert to the old source (--revert)',
  verify: 'verify every acknowledged write',
  teardown: 'tear down',
};

interface Gate {
  started: Promise<void>;
  done: Promise<string>;
  start(): void;
  finish(message: string): void;
  fail(e: Error): void;
  skipped?: string;
  title?: string;
  output?: (line: string) => void;
  pending: string[];
  isStarted: boolean;
  isDone: boolean;
}

function gate(): Gate {
  let start!: () => void;
  let finish!: (m: string) => void;
  let fail!: (e: Error) => void;
  const started = new Promise<void>((r) => (start = r));
  const done = new Promise<string>((res, rej) => ((finish = res), (fail = rej)));
  done.catch(() => {});
  const g: Gate = {
    started,
    done,
    pending: [],
    isStarted: false,
    isDone: false,
    start: () => ((g.isStarted = true), start()),
    finish: (m) => ((g.isDone = true), finish(m)),
    fail: (e) => ((g.isDone = true), fail(e)),
  };
  return g;
}

/**
 * Runs `work` with a listr2 task list that follows its progress events: one task per rehearsal stage,
 * the latest engine message as the task's output. Live on a TTY; plain lines otherwise (pipes, CI).
 * The work drives; the list only shows it, so its outcome is the work's.
 */
export async function withRehearseTasks<T>(io: CliIO, scrub: (t: string) => string, work: (onEvent: (e: RehearseEvent) => void) => Promise<T>): Promise<T> {
  const gates = new Map(REHEARSE_PHASES.map((p) => [p, gate()] as const));
  const onEvent = (e: RehearseEvent) => {
    const g = gates.get(e.phase)!;
    const message = scrub(e.message);
    if (e.status === 'begin') {
      g.title = message;
      g.start();
    } else if (e.status === 'skip') {
      g.skipped = message;
      g.start();
      g.finish(message);
    } else if (e.status === 'ok') g.finish(message);
    else if (e.status === 'fail') g.fail(new Error(message));
    else if (g.output) g.output(message);
    else g.pending.push(message);
  };
  const logger = stderrLogger(io);
  const list = new Listr(
    REHEARSE_PHASES.map((phase) => ({
      title: TITLES[phase],
      task: async (_ctx: unknown, task: { title: string; output: string; skip(m?: string): void }) => {
        const g = gates.get(phase)!;
        await g.started;
        if (g.skipped) return task.skip(`${TITLES[phase]}: ${g.skipped}`);
        if (g.title) task.title = g.title;
        g.output = (line) => (task.output = line);
        g.pending.splice(0).forEach(g.output);
        await g.done;
      },
      rendererOptions: { persistentOutput: true },
    })),
    {
      concurrent: false,
      exitOnError: true,
      // The rehearsal owns SIGINT: it stops every server it started.
      registerSignalListeners: false,
      renderer: io.isTTY ? StderrLiveRenderer : SimpleRenderer,
      rendererOptions: { logger },
    },
  );
  const shown = list.run().catch(() => {});
  try {
    return await work(onEvent);
  } finally {
    // Stages the work never reached (it failed, or they do not apply) end the list instead of blocking it.
    for (const g of gates.values()) {
      if (!g.isStarted) {
        g.skipped = 'not reached';
        g.start();
      }
      if (!g.isDone) g.fail(new Error('stopped'));
    }
    await shown;
  }
}
