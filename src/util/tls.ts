import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { PreflightError, UsageError } from '../errors.js';

/** libpq's sslmode values. MySQL's ssl-mode values map onto the same scale (see mysqlModes). */
export const PG_SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof PG_SSL_MODES)[number];

/** MySQL's documented ssl-mode values and the libpq mode with the same meaning. */
const MYSQL_MODES: Record<string, SslMode> = {
  DISABLED: 'disable',
  PREFERRED: 'prefer',
  REQUIRED: 'require',
  VERIFY_CA: 'verify-ca',
  VERIFY_IDENTITY: 'verify-full',
};

/**
 * TLS settings of one endpoint, engine-neutral. `verify`: what is checked about the server's certificate —
 * nothing, the chain up to `ca`, or the chain and the host name. Paths are files on this machine.
 */
export interface TlsSettings {
  mode: SslMode;
  verify: 'none' | 'chain' | 'full';
  /** The mode as the URL spelled it (for messages); the default when the URL named none. */
  spelled: string;
  ca?: string;
  cert?: string;
  key?: string;
  crl?: string;
}

function verifyOf(mode: SslMode): TlsSettings['verify'] {
  return mode === 'verify-full' ? 'full' : mode === 'verify-ca' ? 'chain' : 'none';
}

function paths(params: Record<string, string>, keys: Partial<Record<'ca' | 'cert' | 'key' | 'crl', string>>): Pick<TlsSettings, 'ca' | 'cert' | 'key' | 'crl'> {
  const out: Pick<TlsSettings, 'ca' | 'cert' | 'key' | 'crl'> = {};
  for (const [k, param] of Object.entries(keys) as ['ca' | 'cert' | 'key' | 'crl', string][]) {
    const v = params[param];
    if (v !== undefined && v !== '') out[k] = v;
  }
  return out;
}

/**
 * libpq: sslmode (default prefer), sslrootcert, sslcert, sslkey, sslcrl. As in libpq, `require` with an
 * sslrootcert verifies the chain like verify-ca. Verifying modes need sslrootcert: the tool and every child
 * tool must trust the same roots, and libpq's implicit ~/.postgresql/root.crt is a different file per user.
 */
export function pgTls(params: Record<string, string>, display: string): TlsSettings {
  const spelled = params.sslmode ?? 'prefer';
  if (!(PG_SSL_MODES as readonly string[]).includes(spelled)) {
    throw new UsageError(`unknown sslmode "${spelled}" in ${display}`, `use one of ${PG_SSL_MODES.join(', ')}`);
  }
  const mode = spelled as SslMode;
  const files = paths(params, { ca: 'sslrootcert', cert: 'sslcert', key: 'sslkey', crl: 'sslcrl' });
  const verify = mode === 'require' && files.ca ? 'chain' : verifyOf(mode);
  if (verify !== 'none' && !files.ca) {
    throw new UsageError(`sslmode=${mode} in ${display} needs sslrootcert`, 'add sslrootcert=/path/to/ca.pem (the CA that signed the server certificate) to the URL');
  }
  return { mode, verify, spelled, ...files };
}

/**
 * MySQL: ssl-mode (default PREFERRED; VERIFY_CA when only ssl-ca is given, as the mysql client does),
 * ssl-ca, ssl-cert, ssl-key (no CRL: mysql2 cannot check one). Values are case-insensitive, like the client's option.
 */
export function mysqlTls(params: Record<string, string>, display: string): TlsSettings {
  const files = paths(params, { ca: 'ssl-ca', cert: 'ssl-cert', key: 'ssl-key' });
  const spelled = params['ssl-mode'] ?? (files.ca ? 'VERIFY_CA' : 'PREFERRED');
  const mode = MYSQL_MODES[spelled.toUpperCase()];
  if (!mode) throw new UsageError(`unknown ssl-mode "${spelled}" in ${display}`, `use one of ${Object.keys(MYSQL_MODES).join(', ')}`);
  const verify = verifyOf(mode);
  if (verify !== 'none' && !files.ca) {
    throw new UsageError(`ssl-mode=${spelled} in ${display} needs ssl-ca`, 'add ssl-ca=/path/to/ca.pem (the CA that signed the server certificate) to the URL');
  }
  return { mode, verify, spelled, ...files };
}

/** True when a connection must not fall back to plaintext. */
export function tlsRequired(t: TlsSettings): boolean {
  return t.mode === 'require' || t.mode === 'verify-ca' || t.mode === 'verify-full';
}

function readPem(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${what} file ${path} (${(e as NodeJS.ErrnoException).code ?? String(e)})`, `check the ${what} path in the URL and that this user may read it`);
  }
}

/**
 * Node TLS options with the same meaning: `chain` verifies the certificate chain against the CA but not the
 * host name (libpq verify-ca), `full` both.
 */
export function nodeTlsOptions(t: TlsSettings): ConnectionOptions {
  return {
    rejectUnauthorized: t.verify !== 'none',
    ...(t.ca ? { ca: readPem(t.ca, 'CA certificate') } : {}),
    ...(t.cert ? { cert: readPem(t.cert, 'client certificate') } : {}),
    ...(t.key ? { key: readPem(t.key, 'client key') } : {}),
    ...(t.crl ? { crl: readPem(t.crl, 'certificate revocation list') } : {}),
    ...(t.verify === 'full' ? {} : { checkServerIdentity: () => undefined }),
  };
}

/** Node's / OpenSSL's certificate error codes, in words an operator can act on. */
const CERT_REASONS: Record<string, string> = {
  SELF_SIGNED_CERT_IN_CHAIN: 'the server certificate is not signed by the given CA',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server certificate is self-signed and not the given CA',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the server certificate is not signed by the given CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the server certificate is not signed by the given CA',
  UNABLE_TO_GET_ISSUER_CERT: 'the server certificate is not signed by the given CA',
  CERT_SIGNATURE_FAILURE: 'the server certificate signature does not verify',
  CERT_HAS_EXPIRED: 'the server certificate has expired',
  CERT_NOT_YET_VALID: 'the server certificate is not valid yet',
  CERT_REVOKED: 'the server certificate is revoked',
  ERR_TLS_CERT_ALTNAME_INVALID: 'host name mismatch: the server certificate does not name this host',
};

const MESSAGE_CODES: [RegExp, string][] = [
  [/certificate has expired/i, 'CERT_HAS_EXPIRED'],
  [/not yet valid/i, 'CERT_NOT_YET_VALID'],
  [/certificate revoked/i, 'CERT_REVOKED'],
  [/Hostname\/IP does not match|altnames/i, 'ERR_TLS_CERT_ALTNAME_INVALID'],
  [/unable to verify the first certificate/i, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  [/self[- ]signed certificate in certificate chain/i, 'SELF_SIGNED_CERT_IN_CHAIN'],
  [/self[- ]signed certificate/i, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  [/unable to get (local )?issuer certificate/i, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
];

/**
 * PreflightError (exit 3) for a refused handshake or certificate, or undefined when `e` is not a TLS failure.
 * `plaintextMessage`: the driver's words for a server that does not offer TLS at all.
 */
export function tlsRefusal(e: unknown, where: string, t: TlsSettings, plaintextMessage: RegExp): PreflightError | undefined {
  const err = e as { code?: string; message?: string };
  // A server's own error (a SQLSTATE, a MySQL ER_ code) is never a handshake failure, whatever its text says.
  if (err.code && (/^[0-9A-Z]{5}$/.test(err.code) || err.code.startsWith('ER_'))) return undefined;
  const msg = err.message ?? String(e);
  if (plaintextMessage.test(msg)) {
    return new PreflightError('tls', `${where} does not offer TLS and the URL asks for ${t.spelled}`, 'turn on TLS on the server (ssl=on), or lower the mode in the URL if plaintext is acceptable', { cause: e });
  }
  // mysql2 keeps only OpenSSL's text (code HANDSHAKE_SSL_ERROR): recognise the reason from it.
  const code = (err.code && CERT_REASONS[err.code] ? err.code : undefined) ?? MESSAGE_CODES.find(([re]) => re.test(msg))?.[1];
  const reason = code ? CERT_REASONS[code] : undefined;
  if (reason) {
    const hint =
      code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? 'connect with a host name the certificate names, or use verify-ca / VERIFY_CA to check the chain only' : 'check the CA file in the URL, and the server certificate';
    return new PreflightError('tls', `TLS refused at ${where}: ${reason} (${code})`, hint, { cause: e });
  }
  if (/SSL|TLS|certificate|ERR_SSL/i.test(`${err.code ?? ''} ${msg}`)) {
    return new PreflightError('tls', `TLS handshake with ${where} failed: ${msg.split('\n')[0]}`, 'check the TLS settings in the URL and the server', { cause: e });
  }
  return undefined;
}
