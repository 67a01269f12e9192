import { readdir, readFile, readlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { OperationError, UsageError } from '../../src/errors.js';

/** HAProxy proxy and server names: what its config parser accepts, so nothing can smuggle a second command. */
const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

function checkName(what: string, name: string): string {
  if (!NAME.test(name)) throw new UsageError(`bad HAProxy ${what} name "${name}"`, 'use the name from haproxy.cfg (letters, digits, _ . : -)');
  return name;
}

function serverRef(backend: string, server: string): string {
  return `${checkName('backend', backend)}/${checkName('server', server)}`;
}

export function setMaxconnCmd(backend: string, server: string, maxconn: number): string {
  if (!Number.isInteger(maxconn) || maxconn < 0) throw new UsageError(`bad maxconn ${maxconn}`, 'use a whole number (0 = unlimited)');
  return `set maxconn server ${serverRef(backend, server)} ${maxconn}`;
}

/** `set server addr` takes an IP address; callers resolve names first. */
export function setAddrCmd(backend: string, server: string, ip: string, port: number): string {
  if (!/^[0-9A-Fa-f:.]+$/.test(ip)) throw new UsageError(`"${ip}" is not an IP address`, 'resolve the host name first');
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`bad port ${port}`, 'use a port between 1 and 65535');
  return `set server ${serverRef(backend, server)} addr ${ip} port ${port}`;
}

/** Closes the connections still established to the server (asynchronously, in HAProxy). */
export function shutdownSessionsCmd(backend: string, server: string): string {
  return `shutdown sessions server ${serverRef(backend, server)}`;
}

/** What `show stat` says about one server. */
export interface ServerStat {
  /** Current sessions on the server, connections waiting in its queue, sessions since start. */
  scur: number;
  qcur: number;
  stot: number;
  /** The server's maxconn; 0 = unlimited (HAProxy prints an empty field). */
  slim: number;
  /** `ip:port` it connects to. */
  addr: string;
  mode: string;
  status: string;
}

/** Picks one server's row out of `show stat` CSV (header line starts with `# `). */
export function parseShowStat(csv: string, backend: string, server: string): ServerStat | undefined {
  const lines = csv.split('\n').filter(Boolean);
  const header = lines[0]?.replace(/^#\s*/, '').split(',');
  if (!header) return undefined;
  const col = (name: string) => header.indexOf(name);
  for (const line of lines.slice(1)) {
    const f = line.split(',');
    if (f[col('pxname')] !== backend || f[col('svname')] !== server) continue;
    const num = (name: string) => Number(f[col(name)] || 0);
    return { scur: num('scur'), qcur: num('qcur'), stot: num('stot'), slim: num('slim'), addr: f[col('addr')] ?? '', mode: f[col('mode')] ?? '', status: f[col('status')] ?? '' };
  }
  return undefined;
}

/** `127.0.0.1:3306` or `[::1]:3306`. */
export function parseAddr(addr: string): { host: string; port: number } | undefined {
  const i = addr.lastIndexOf(':');
  if (i <= 0) return undefined;
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 1) return undefined;
  return { host: addr.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port };
}

/** Runtime API answers that mean the command was refused (HAProxy answers errors as text, not codes). */
export function runtimeError(reply: string): string | undefined {
  const first = reply.trim().split('\n')[0] ?? '';
  return /^(No such|Unknown command|Require |Permission denied|Invalid|Unexpected|Can't|Cannot|Missing|.*\b(failed|error)\b)/i.test(first) ? first : undefined;
}

/** The admin socket: one command per connection (HAProxy closes it after answering in non-interactive mode). */
export class HaproxyRuntime {
  constructor(
    readonly socket: string,
    private readonly timeoutMs = 5_000,
  ) {}

  async raw(command: string): Promise<string> {
    if (/[\n;]/.test(command)) throw new UsageError('one HAProxy runtime command at a time', 'no newlines or ; in a command');
    return new Promise((resolve, reject) => {
      const s = connect(this.socket);
      let out = '';
      const timer = setTimeout(() => {
        s.destroy();
        reject(new OperationError(`HAProxy admin socket ${this.socket} did not answer "${command}" within ${this.timeoutMs}ms`, 'check that HAProxy runs and the socket is the one in its `stats socket` line'));
      }, this.timeoutMs);
      s.setEncoding('utf8');
      s.on('data', (d: string) => (out += d));
      s.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new OperationError(`cannot use HAProxy admin socket ${this.socket} (${e.code ?? e.message})`, 'check the path and that this user may open it (stats socket ... mode/level admin)'));
      });
      s.once('close', () => {
        clearTimeout(timer);
        resolve(out);
      });
      s.once('connect', () => s.write(`${command}\n`));
    });
  }

  /** Runs a command and throws OperationError when HAProxy refuses it. */
  async command(command: string): Promise<string> {
    const reply = await this.raw(command);
    const err = runtimeError(reply);
    if (err) throw new OperationError(`HAProxy refused "${command}": ${err}`, 'check backend and server names against haproxy.cfg and that the socket has level admin');
    return reply;
  }

  async server(backend: string, server: string): Promise<ServerStat> {
    const stat = parseShowStat(await this.command('show stat'), backend, server);
    if (!stat) throw new OperationError(`HAProxy has no server ${backend}/${server}`, 'check router.backend and router.server against haproxy.cfg');
    return stat;
  }

  /**
   * The TCP addresses HAProxy listens on, read from /proc for the pid `show info` reports (the admin socket is a
   * unix socket, so HAProxy runs on this host). The hold connects through one of them to occupy the server slot.
   */
  async listeners(): Promise<Array<{ host: string; port: number }>> {
    const pid = /^Pid:\s*(\d+)/m.exec(await this.command('show info'))?.[1];
    if (!pid) return [];
    const inodes = new Set<string>();
    for (const fd of await readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m) inodes.add(m[1]!);
    }
    const out: Array<{ host: string; port: number }> = [];
    for (const file of ['tcp', 'tcp6']) {
      const table = await readFile(`/proc/${pid}/net/${file}`, 'utf8').catch(() => '');
      out.push(...parseProcNetListeners(table, inodes));
    }
    return out;
  }
}

/** LISTEN rows (state 0A) of /proc/net/tcp{,6} whose inode belongs to the process. */
export function parseProcNetListeners(table: string, inodes: Set<string>): Array<{ host: string; port: number }> {
  const out: Array<{ host: string; port: number }> = [];
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[3] !== '0A' || !inodes.has(f[9]!)) continue;
    const [hexIp, hexPort] = f[1]!.split(':');
    if (!hexIp || !hexPort) continue;
    out.push({ host: procIp(hexIp), port: parseInt(hexPort, 16) });
  }
  return out;
}

/** /proc/net/tcp prints addresses as little-endian 32-bit words. A wildcard is reached through loopback. */
function procIp(hex: string): string {
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((w) => (w.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16)));
  if (bytes.length === 4) {
    const ip = bytes.join('.');
    return ip === '0.0.0.0' ? '127.0.0.1' : ip;
  }
  if (bytes.every((b) => b === 0)) return '::1';
  if (bytes.slice(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return bytes.slice(12).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return groups.join(':');
}
