import { OperationError } from '../index.js';
import type { CliIO } from './io.js';

/** Rejects when the operator interrupts; a second interrupt exits at once. The run restores the safe state first. */
export function interruptSignal(io: CliIO): { abort: Promise<never>; dispose(): void } {
  let reject!: (e: Error) => void;
  const abort = new Promise<never>((_, r) => (reject = r));
  abort.catch(() => {});
  let count = 0;
  const handler = (signal: NodeJS.Signals) => {
    if (++count > 1) process.exit(130);
    io.err(`\n${signal}: stopping; the source is being restored\n`);
    reject(new OperationError(`interrupted by ${signal}`, 'the run restored the safe state; run it again when ready'));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return { abort, dispose: () => (process.off('SIGINT', handler), process.off('SIGTERM', handler)) };
}
