import { Socket } from 'node:net';
import pg from 'pg';
import { OperationError, PreflightError, UsageError } from '../../src/errors.js';
import type { DbEndpoint } from '../../src/util/db-url.js';
import { redactText } from '../../src/util/redact.js';
import { pgPassword } from '../postgres/postgres-password.js';
import { tlsRefusal } from '../../src/util/tls.js';
import { pgSslAttempts, pgSslFallsBack } from '../postgres/postgres-connection.js';

/** PgBouncer keeps names in 64-byte buffers including the terminator. */
const MAX_NAME_BYTES = 63;

/**
 * Quotes a database name for an admin console command. The console speaks only the simple query protocol
 * (no parameters), so every name is validated and double-quoted here and nowhere else.
 */
export function quoteAdminIdent(name: string): string {
  if (name === '') throw new UsageError('empty PgBouncer database name', 'name the [databases] entry');
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw new UsageError(`PgBouncer database name "${name.slice(0, 20)}..." is longer than ${MAX_NAME_BYTES} bytes`, 'use the [databases] entry name');
  if (/[\0-\x1f\x7f]/.test(name)) throw new UsageError('PgBouncer database name contains a control character', 'use the [databases] entry name');
  return `"${name.replace(/"/g, '""')}"`;
}

export type AdminRow = Record<string, string | number | null>;

function where(ep: DbEndpoint): string {
  return `${ep.host}:${ep.port}`;
}

/** Turns a pg error from the admin console into the error hierarchy (exported for its unit test). */
export function mapAdminError(e: unknown, ep: DbEndpoint): Error {
  const err = e as { code?: string; message?: string };
  const msg = redactText(err.message ?? String(e), ep.password ? [ep.password] : []);
  const tls = tlsRefusal(e, `the PgBouncer admin console at ${where(ep)}`, ep.tls, /server does not support SSL/i);
  if (tls) return tls;
  if (err.code && /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|EAI_AGAIN|ENOENT|ECONNRESET)$/.test(err.code)) {
    return new PreflightError('unreachable', `cannot reach the PgBouncer admin console at ${where(ep)} (${err.code})`, 'check router.admin in the plan and that PgBouncer is running', { cause: e });
  }
  if (/timeout/i.test(msg)) return new PreflightError('unreachable', `timed out connecting to the PgBouncer admin console at ${where(ep)}`, 'check router.admin host, port and firewalls', { cause: e });
  if (err.code === '28P01' || /password authentication failed|SASL|client password/i.test(msg)) {
    return new PreflightError('auth', `PgBouncer refused the password of "${ep.user}" at ${where(ep)}`, "check router.adminPasswordEnv and PgBouncer's auth_file", { cause: e });
  }
  // Not /admin/: names in other messages contain it ("database r_admin is not paused").
  if (/\bnot allowed\b|admin access needed/i.test(msg) && err.code === '08P01') {
    return new PreflightError('privilege', `"${ep.user}" may not use the PgBouncer admin console at ${where(ep)}: ${msg}`, 'add the user to admin_users in pgbouncer.ini', { cause: e });
  }
  return new OperationError(`PgBouncer admin console at ${where(ep)}: ${msg}`, undefined, { cause: e });
}

/** One admin console connection. Commands are plain text with names quoted by quoteAdminIdent(). */
export class PgBouncerAdmin {
  private constructor(
    private readonly client: pg.Client,
    private readonly socket: Socket,
    readonly endpoint: DbEndpoint,
  ) {}

  /**
   * `pipelined` lets commandsAtOnce() send several commands in one write. Not for a connection that may be
   * abandoned with a command pending (a PAUSE that never returns): a pipelined client waits for it on close.
   */
  static async connect(ep: DbEndpoint, timeoutMs = 5_000, opts: { pipelined?: boolean } = {}): Promise<PgBouncerAdmin> {
    const attempts = pgSslAttempts(ep);
    for (let i = 0; ; i++) {
      const socket = new Socket();
      const client = new pg.Client({
        host: ep.host,
        port: ep.port,
        user: ep.user,
        password: pgPassword(ep, 'pgbouncer'),
        database: 'pgbouncer',
        connectionTimeoutMillis: timeoutMs,
        // TLS to the console with the URL's sslmode, as for a server (libpq's meaning).
        ssl: attempts[i]!,
        // On a socket we can cork: see commandsAtOnce().
        pipeline: opts.pipelined === true,
        stream: () => socket,
      });
      // A console that goes away emits 'error' on an idle client; without a listener that kills the process.
      client.on('error', () => {});
      try {
        await client.connect();
        return new PgBouncerAdmin(client, socket, ep);
      } catch (e) {
        await client.end().catch(() => {});
        if (i + 1 < attempts.length && pgSslFallsBack(e, ep)) continue;
        throw mapAdminError(e, ep);
      }
    }
  }

  /** Runs one console command (simple query protocol: the query has no parameters). */
  async command(text: string): Promise<AdminRow[]> {
    try {
      const r = await this.client.query<AdminRow>(text);
      return r.rows ?? [];
    } catch (e) {
      throw mapAdminError(e, this.endpoint);
    }
  }

  /**
   * Sends several commands in one write. PgBouncer runs every command of one read before it serves any other
   * client, so nothing happens between them. Throws the first failure after all have answered.
   */
  async commandsAtOnce(texts: readonly string[]): Promise<AdminRow[][]> {
    if (!this.client.pipeline) throw new Error('commandsAtOnce needs a connection opened with { pipelined: true }');
    this.socket.cork();
    const answers = texts.map((t) =>
      this.client.query<AdminRow>(t).then(
        (r) => r.rows ?? [],
        (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
      ),
    );
    this.socket.uncork();
    const settled = await Promise.all(answers);
    const failed = settled.find((a): a is Error => a instanceof Error);
    if (failed) throw mapAdminError(failed, this.endpoint);
    return settled as AdminRow[][];
  }

  async close(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}
