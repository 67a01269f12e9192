import { redactDeep, redactText, type CutoverEvent, type PlanCommandOptions } from '../index.js';
import type { CliIO } from './io.js';
import { withLiveSteps } from './live-steps.js';

/** The program's own flags, which every command reads through `cmd.optsWithGlobals()`. */
export interface GlobalOpts {
  json?: boolean;
  /** How progress events print on stderr: human lines, or one JSON object per line. */
  events?: 'text' | 'json';
  debug?: boolean;
  stateDir?: string;
}

/** What the commands of one invocation share: where they write, and the secrets every printed line is scrubbed of. */
export class CliContext {
  readonly secrets: string[] = [];
  /** stdout already carries this invocation's one JSON document (e.g. `check` findings before exit 3). */
  jsonEmitted = false;
  /** The invocation's --events (set before the command's action runs). */
  eventFormat: NonNullable<GlobalOpts['events']> = 'text';

  constructor(readonly io: CliIO) {}

  addSecret(v: string | undefined): void {
    if (v) this.secrets.push(v);
  }

  scrub(text: string): string {
    return redactText(text, this.secrets);
  }

  /** Progress as the invocation asks: a live view on a terminal (text events), else eventPrinter's lines. */
  async withProgress<T>(work: (onEvent: (e: CutoverEvent) => void) => Promise<T>): Promise<T> {
    if (this.io.isTTY && this.eventFormat === 'text') return withLiveSteps(this.io, (t) => this.scrub(t), work);
    return work(this.eventPrinter());
  }

  /** Human lines on stderr, scrubbed. */
  print(lines: string[]): void {
    this.io.err(this.scrub(lines.join('\n')) + '\n');
  }

  /** A command's result: the JSON document on stdout with --json, else its human lines. */
  emit(json: boolean | undefined, result: object, lines: string[]): void {
    if (json) {
      this.io.out(JSON.stringify(redactDeep({ ok: true, ...result }, this.secrets), null, 2) + '\n');
      this.jsonEmitted = true;
    } else this.print(lines);
  }

  /** One line per finished step (`✔ fence: ...`). */
  eventPrinter(): (e: CutoverEvent) => void {
    return (e) => {
      if (this.eventFormat === 'json') {
        this.io.err(JSON.stringify(redactDeep({ event: e.step, status: e.status, message: e.message, ...(e.progress ? { progress: e.progress } : {}), at: new Date().toISOString() }, this.secrets)) + '\n');
        return;
      }
      if (e.status === 'begin') return;
      const mark = e.status === 'ok' ? '✔' : e.status === 'fail' ? '✖' : '·';
      this.print([`${mark} ${e.step}: ${e.message}`]);
    };
  }

  /** Options of every plan command: the environment for `passwordEnv`, and the plan's secrets and warnings once it is read. */
  planOptions(): PlanCommandOptions {
    return {
      env: this.io.env,
      onOpen: (p) => {
        p.secrets.forEach((v) => this.addSecret(v));
        for (const w of p.warnings) this.io.err(`note: ${w}\n`);
      },
    };
  }
}
