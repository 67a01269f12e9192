// The built CLI with the test-only pause hook: the real `cutover` binary (dist/src/cli/main.js) has no way to
// be parked from its environment or argv; only this test entry point hands runCli a pause.
import { processIO } from '../../dist/src/cli/io.js';
import { runCli } from '../../dist/src/cli/program.js';

const testPause = { step: process.env.CUTOVER_TEST_PAUSE_AT, tenant: process.env.CUTOVER_TEST_PAUSE_TENANT };
process.exitCode = await runCli(process.argv.slice(2), { ...processIO(), testPause });
