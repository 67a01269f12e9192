import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

/** PostgreSQL's defaults for a new SCRAM-SHA-256 verifier (scram_iterations, 16-byte salt). */
const ITERATIONS = 4096;
const SALT_BYTES = 16;

/**
 * RFC 4013 SASLprep as PostgreSQL applies it before hashing (src/common/saslprep.c): non-ASCII spaces become
 * a space, characters "commonly mapped to nothing" go, then NFKC. ASCII passwords are unchanged. (PostgreSQL
 * also falls back to the raw bytes for prohibited or bidi-invalid input, which these rules leave alone.)
 */
export function saslPrep(password: string): string {
  if (/^[\x00-\x7f]*$/.test(password)) return password;
  const mapped = password.replace(/[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/g, ' ').replace(/[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/g, '');
  return mapped.normalize('NFKC');
}

/**
 * The SCRAM-SHA-256 verifier of a password, in the form `CREATE ROLE ... PASSWORD` stores as it is
 * (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, RFC 5802/7677), made here as psql's
 * `\password` does: the server, its logs and pg_stat_statements see the verifier, never the password.
 */
export function scramVerifier(password: string, salt: Buffer = randomBytes(SALT_BYTES), iterations = ITERATIONS): string {
  return verifierOf(pbkdf2Sync(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256'), salt, iterations);
}

async function scramVerifierAsync(password: string, salt: Buffer, iterations: number): Promise<string> {
  return verifierOf(await promisify(pbkdf2)(Buffer.from(saslPrep(password), 'utf8'), salt, iterations, 32, 'sha256'), salt, iterations);
}

function verifierOf(salted: Buffer, salt: Buffer, iterations: number): string {
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}

/** What a stored password or pooler secret is: a SCRAM-SHA-256 verifier, an md5 hash, or a plain password. */
export function secretKind(secret: string): 'scram' | 'md5' | 'plain' {
  if (secret.startsWith('SCRAM-SHA-256$')) return 'scram';
  return /^md5[0-9a-f]{32}$/.test(secret) ? 'md5' : 'plain';
}

/**
 * Whether `secret` — a plain password, a SCRAM-SHA-256 verifier or an md5 hash, as a PgBouncer userlist holds
 * them — lets `user` log in to a server whose stored verifier is `stored`. A SCRAM secret answers a SCRAM
 * challenge only with the same salt (it is the same verifier); an md5 hash answers only md5.
 */
export async function secretMatches(secret: string, user: string, stored: string): Promise<boolean> {
  const scram = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored);
  if (secretKind(secret) !== 'plain') return secret === stored;
  // PBKDF2 off the event loop: a wave's preflight shares the process with other tenants' windows.
  if (scram) return (await scramVerifierAsync(secret, Buffer.from(scram[2]!, 'base64'), Number(scram[1]))) === stored;
  if (secretKind(stored) === 'md5')
    return (
      `md5${createHash('md5')
        .update(secret + user)
        .digest('hex')}` === stored
    );
  return secret === stored;
}
