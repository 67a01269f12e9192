import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import { registerRunLike } from './run.js';

export function registerResume(program: Command, ctx: CliContext): void {
  registerRunLike(program, ctx, 'resume', 'continue after a crash: forward past the point of no return, else restore and run again');
}
