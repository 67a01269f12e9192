import { describe, expect, it } from 'vitest';
import { CliContext } from '../../src/cli/context.js';
import { progressBar } from '../../src/cli/live-steps.js';

function context(): { ctx: CliContext; err: string[] } {
  const err: string[] = [];
  const ctx = new CliContext({ out: () => {}, err: (t) => void err.push(t), env: {}, isTTY: false });
  return { ctx, err };
}

describe('progress events on stderr', () => {
  it('--events json: one object per event, begin included, progress as numbers, secrets scrubbed', () => {
    const { ctx, err } = context();
    ctx.eventFormat = 'json';
    ctx.addSecret('s3cret');
    const print = ctx.eventPrinter();
    print({ step: 'sync', status: 'begin', message: 'copy shop' });
    print({
      step: 'sync',
      status: 'info',
      message: 'copy 1/2 tables (password s3cret)',
      progress: { phase: 'copy', table: 'public.a', tablesDone: 1, tablesTotal: 2, bytesDone: 10, bytesTotal: 20, rowsDone: 5, tableRows: 5 },
    });
    const lines = err.join('').split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    const [begin, info] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(begin).toMatchObject({ event: 'sync', status: 'begin', message: 'copy shop' });
    expect(info).toMatchObject({ event: 'sync', status: 'info', progress: { table: 'public.a', bytesDone: 10, bytesTotal: 20, rowsDone: 5, tableRows: 5 } });
    expect(String(info!.message)).not.toContain('s3cret');
    expect(Number.isNaN(Date.parse(String(info!.at)))).toBe(false);
  });

  it('text: one line per finished step or message, begin left out', () => {
    const { ctx, err } = context();
    const print = ctx.eventPrinter();
    print({ step: 'sync', status: 'begin', message: 'copy shop' });
    print({ step: 'sync', status: 'info', message: 'copy 1/2 tables' });
    print({ step: 'sync', status: 'ok', message: 'copy shop (2s)' });
    expect(err.join('')).toBe('· sync: copy 1/2 tables\n✔ sync: copy shop (2s)\n');
  });

  it('the live view draws a bar of the copied share', () => {
    expect(progressBar(0, 100, 10)).toBe('░░░░░░░░░░');
    expect(progressBar(50, 100, 10)).toBe('█████░░░░░');
    expect(progressBar(100, 100, 10)).toBe('██████████');
    expect(progressBar(5, 0, 4)).toBe('░░░░');
  });
});
