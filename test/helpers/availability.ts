/**
 * Tests that need a binary skip with a printed reason locally and fail under CI=true, where every
 * binary must be installed by .ci/run.
 */
export const IS_CI = /^(1|true|yes)$/i.test(process.env.CI ?? '');

/** Runs `probe`; returns undefined when it succeeds, else the reason (printed). Under CI a failure throws. */
export async function missing(what: string, probe: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await probe();
    return undefined;
  } catch (e) {
    const reason = `${what} unavailable: ${e instanceof Error ? e.message : String(e)}`;
    if (IS_CI) throw new Error(`${reason} (CI=true: every test binary must be installed by .ci/run)`);
    console.warn(`SKIP ${reason}`);
    return reason;
  }
}
