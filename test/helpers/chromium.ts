import { constants } from 'node:fs';
import { access, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { missing } from './availability.js';

export const CHROMIUM = '/usr/bin/chromium';

export const chromiumMissing = await missing('Chromium (apt-get install -y chromium)', () => access(CHROMIUM, constants.X_OK));

/** Headless Chromium with no network side trips and a throw-away profile. */
async function chromium(args: string[]): Promise<string> {
  const profile = await mkdtemp(join(tmpdir(), 'cutover-chromium-'));
  try {
    const r = await execa(
      CHROMIUM,
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, ...args],
      { timeout: 60_000, reject: false },
    );
    if (r.exitCode !== 0) throw new Error(`chromium ${args.join(' ')} exited ${r.exitCode}: ${r.stderr.split('\n').slice(-3).join(' | ')}`);
    return r.stdout;
  } finally {
    await rm(profile, { recursive: true, force: true });
  }
}

/** Opens `htmlFile` as a browser would: the DOM after load, and a 1200×1600 screenshot (path and size). */
export async function openInChromium(htmlFile: string, screenshot: string): Promise<{ dom: string; screenshotBytes: number }> {
  const url = `file://${htmlFile}`;
  const dom = await chromium(['--dump-dom', url]);
  await chromium([`--screenshot=${screenshot}`, '--window-size=1200,1600', url]);
  return { dom, screenshotBytes: (await stat(screenshot)).size };
}
