/**
 * Secrets never reach argv, logs, journals or reports. Everything printable goes through these helpers.
 */
// Up to the last @ of the URL: a password with an unencoded @ must not leave its tail in the output.
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)(\S*)@/gi;
// `password=x` (libpq/ini style, also PGPASSWORD=x) and `"password": "x"` (JSON); not prose like "password: set it".
const KEY_VALUE_PASSWORD = /\b(\w*(?:password|passwd|pwd))=("[^"]*"|'[^']*'|[^\s&;]+)/gi;
const JSON_PASSWORD = /("(?:password|passwd|pwd)"\s*:\s*)"(?:[^"\\]|\\.)*"/gi;

export const REDACTED = '***';

/** Replaces the password part of every URL in `text`, and every `password=...` pair. */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(URL_PASSWORD, `$1${REDACTED}@`).replace(KEY_VALUE_PASSWORD, `$1=${REDACTED}`).replace(JSON_PASSWORD, `$1"${REDACTED}"`);
  for (const secret of secrets) {
    if (!secret) continue;
    out = out.split(secret).join(REDACTED);
    const encoded = encodeURIComponent(secret);
    if (encoded !== secret) out = out.split(encoded).join(REDACTED);
  }
  return out;
}

/** A URL for display: the password replaced, everything else kept. Unparseable input is redacted as text. */
export function redactUrl(url: string): string {
  // More than one @: the URL parser would split an unencoded @ in the password wrongly; redact as text.
  if (url.indexOf('@') !== url.lastIndexOf('@')) return redactText(url);
  try {
    const u = new URL(url);
    if (u.password) u.password = REDACTED;
    for (const key of [...u.searchParams.keys()]) {
      if (/^(password|passwd|pwd)$/i.test(key)) u.searchParams.set(key, REDACTED);
    }
    return u.toString().replace(encodeURIComponent(REDACTED), REDACTED).replace('%2A%2A%2A', REDACTED);
  } catch {
    return redactText(url);
  }
}

/** Deep copy of a JSON-able value with every string redacted (for --json output and journals). */
export function redactDeep<T>(value: T, secrets: readonly string[] = []): T {
  if (typeof value === 'string') return redactText(value, secrets) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, secrets)) as T;
  if (value && typeof value === 'object' && !(value instanceof Date)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = /^(password|passwd|pwd|secret)$/i.test(k) && v ? REDACTED : redactDeep(v, secrets);
    }
    return out as T;
  }
  return value;
}
