/**
 * PgBouncer's auth_file: one user per line, `"name" "password or secret"`, a `"` inside doubled. Lines that do
 * not start with a quoted name (comments, blanks) are skipped, as PgBouncer's loader does. The secrets stay in
 * the returned map: callers compare them, never print them.
 */
export function parseUserlist(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const fields: string[] = [];
    let p = 0;
    while (fields.length < 2) {
      while (p < line.length && /\s/.test(line[p]!)) p++;
      if (line[p] !== '"') break;
      let value = '';
      for (p++; p < line.length; p++) {
        if (line[p] === '"') {
          if (line[p + 1] !== '"') break;
          p++;
        }
        value += line[p];
      }
      if (line[p] !== '"') break;
      p++;
      fields.push(value);
    }
    if (fields.length === 2 && fields[0] !== '') out.set(fields[0]!, fields[1]!);
  }
  return out;
}
