import { redactDeep, redactText, type CutoverEvent, type PlanCommandOptions } from '../index.js';
import type { CliIO } from './io.js';

/** The program's own flags, which every command reads through `cmd.optsWithGlobals()`. */
export interface GlobalOpts {
  json?: boolean;
  debug?: boolean;
  stateDir?: string;
}

/** What the commands of one invocation share: where they write, and the secrets every printed line is scrubbed of. */
export class CliContext {
  readonly secrets: string[] = [];
  /** stdout already carries this invocation's one JSON document (e.g. `check` findings before exit 3). */
  jsonEmitted = false;

  constructor(readonly io: CliIO) {}

  addSecret(v: string | undefined): void {
    if (v) this.secrets.push(v);
  }

  scrub(text: string): string {
    return redactText(text, this.secrets);
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
