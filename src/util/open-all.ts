/**
 * Opens several resources at once. If any fails to open, the ones that did are closed before the failure is
 * thrown: Promise.all would reject at the first failure and leave the others open, unowned.
 */
export async function openAll<T>(opens: readonly (() => Promise<T>)[], close: (t: T) => Promise<unknown>): Promise<T[]> {
  const settled = await Promise.allSettled(opens.map((open) => open()));
  const opened = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(opened.map((t) => close(t).catch(() => {})));
    throw failed.reason;
  }
  return opened;
}
