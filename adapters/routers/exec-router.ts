import { OperationError } from '../../src/errors.js';
import type { Endpoint, Router, RouterFinding } from '../../src/engine/router.js';
import { redactText } from '../../src/util/redact.js';
import { run } from '../../src/util/subprocess.js';
import { formatDuration } from '../../src/util/units.js';

export interface ExecRouterOptions {
  /** argv run by pointTo; no shell unless the user wrote one. */
  command: string[];
  hold?: string[];
  release?: string[];
  timeoutMs: number;
  /** Waves: the tenant being switched, in CUTOVER_TENANT (the endpoint alone does not say which entry to change). */
  tenant?: string;
  /** Values to scrub from error messages built from the command's output. */
  secrets?: readonly string[];
}

type Phase = 'hold' | 'point' | 'release';

/**
 * Runs the operator's own switch command with the endpoint in CUTOVER_* environment variables.
 * hold/release run their own commands when configured, else nothing.
 */
export class ExecRouter implements Router {
  readonly kind = 'exec' as const;
  private last: Endpoint | undefined;

  constructor(private readonly opts: ExecRouterOptions) {}

  describe(): string {
    return `exec ${this.opts.command[0]}`;
  }

  private async runPhase(argv: string[], phase: Phase, endpoint: Endpoint | undefined): Promise<void> {
    const [cmd, ...args] = argv;
    const env = {
      CUTOVER_PHASE: phase,
      CUTOVER_HOST: endpoint?.host,
      CUTOVER_PORT: endpoint ? String(endpoint.port) : undefined,
      CUTOVER_DATABASE: endpoint?.database,
      CUTOVER_TENANT: this.opts.tenant,
    };
    const r = await run(cmd!, args, { env, timeoutMs: this.opts.timeoutMs, reject: false, secrets: this.opts.secrets ?? [] }).catch((e: unknown) => {
      throw new OperationError(`router command ${cmd} (${phase}) could not run: ${e instanceof Error ? e.message : String(e)}`);
    });
    if (r.exitCode === 0) return;
    const lastLine = (r.stderr || r.stdout)
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .at(-1);
    const why = r.exitCode === -1 ? `did not finish (timeout ${formatDuration(this.opts.timeoutMs)}, or could not start)` : `exited ${r.exitCode}`;
    throw new OperationError(redactText(`router command ${cmd} (${phase}) ${why}${lastLine ? `: ${lastLine}` : ''}`, this.opts.secrets ?? []), 'run the command by hand with the same CUTOVER_* variables to see why');
  }

  async hold(): Promise<void> {
    if (this.opts.hold) await this.runPhase(this.opts.hold, 'hold', this.last);
  }

  async pointTo(endpoint: Endpoint): Promise<void> {
    await this.runPhase(this.opts.command, 'point', endpoint);
    this.last = endpoint;
  }

  async release(): Promise<void> {
    if (this.opts.release) await this.runPhase(this.opts.release, 'release', this.last);
  }

  /** Only what this process pointed to: the command is opaque. */
  async current(): Promise<Endpoint | undefined> {
    return this.last;
  }

  async preflight(): Promise<RouterFinding[]> {
    return [];
  }

  async close(): Promise<void> {}
}
