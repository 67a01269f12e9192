/**
 * Whether SQL text holds more than one statement: a `;` outside quotes, quoted identifiers, dollar quotes and
 * comments, followed by anything but whitespace, comments or more `;`. A plan's tenant query is one SELECT; a
 * second statement (`COMMIT; ...`) would run outside the read-only transaction it is wrapped in.
 */
export function hasSeveralStatements(sql: string): boolean {
  let i = 0;
  let ended = false;
  while (i < sql.length) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? sql.length : eol + 1;
      continue;
    }
    if (c === '#') {
      // MySQL comment; in PostgreSQL # is an operator that cannot end a statement either way.
      const eol = sql.indexOf('\n', i);
      i = eol < 0 ? sql.length : eol + 1;
      continue;
    }
    if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end < 0 ? sql.length : end + 2;
      continue;
    }
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (ended && c !== ';') return true;
    if (c === ';') {
      ended = true;
      i++;
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      i = closing(sql, i, c);
      continue;
    }
    if (c === '$') {
      const tag = /^\$[A-Za-z_]?[A-Za-z0-9_]*\$/.exec(sql.slice(i))?.[0];
      if (tag) {
        const end = sql.indexOf(tag, i + tag.length);
        i = end < 0 ? sql.length : end + tag.length;
        continue;
      }
    }
    i++;
  }
  return false;
}

/** Index after the quote that closes the one at `start` (doubled quotes and backslash escapes stay inside). */
function closing(sql: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < sql.length) {
    if (sql[i] === '\\' && quote !== '"') {
      i += 2;
      continue;
    }
    if (sql[i] === quote) {
      if (sql[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return sql.length;
}
