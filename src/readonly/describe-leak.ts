import type { LeakCheck, LeakedTransaction } from './types.js';

/** A session in words; an entry that is not a session (a table without its fence, a binlog event) says what it is. */
export function sessionWords(w: { id: string; user: string; application?: string; reason?: string }): string {
  if (!w.user && w.reason) return `${w.id} (${w.reason})`;
  return `${w.id} (user ${w.user || '?'}${w.application ? `, ${w.application}` : ''})`;
}

/** One leaked transaction in words: xid, tables with row counts, commit time, and its session when known. */
export function describeLeakedTransaction(t: LeakedTransaction): string {
  const tables = t.tables.map((x) => `${x.table} ${x.changes}`).join(', ');
  return `xid ${t.xid} (${tables}${t.committedAt ? `; committed ${t.committedAt}` : ''}${t.session ? `; session ${sessionWords(t.session)}` : ''})`;
}

/** What a failed leak check found, in one line: committed transactions (decoded) and sessions (sampled). */
export function describeLeak(leak: LeakCheck): string {
  const parts: string[] = [];
  const txns = leak.transactions ?? [];
  if (txns.length) parts.push(`${txns.length} transaction(s) committed after the fence: ${txns.slice(0, 5).map(describeLeakedTransaction).join(', ')}${txns.length > 5 ? `, and ${txns.length - 5} more` : ''}`);
  if (leak.writers.length) parts.push(`${leak.writers.length} session(s) could still write after the fence: ${leak.writers.map(sessionWords).join(', ')}`);
  return parts.join('; ');
}
