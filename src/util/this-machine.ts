import { hostname, networkInterfaces } from 'node:os';
import type { DbEndpoint } from './db-url.js';

/**
 * Whether a server at `host` runs on this machine: a Unix socket, loopback, the wildcard address, this machine's
 * name or one of its interfaces' addresses (names are not resolved). A libpq host list (`a,b`) is here only when
 * every entry is.
 */
export function onThisMachine(host: string): boolean {
  const entries = host.split(',').map((h) =>
    h
      .trim()
      .toLowerCase()
      .replace(/^\[|\]$/g, ''),
  );
  return entries.every((h) => {
    if (h === '' || h.startsWith('/') || h === 'localhost' || h.endsWith('.localhost') || h === 'localhost.localdomain' || h === hostname().toLowerCase()) return true;
    const ip = h.replace(/^::ffff:/, '');
    if (/^127\./.test(ip) || ip === '0.0.0.0' || ip === '::1' || ip === '::' || ip === '7f00:1') return true;
    return Object.values(networkInterfaces()).some((addrs) => (addrs ?? []).some((a) => a.address.toLowerCase() === h || a.address.toLowerCase() === ip));
  });
}

/** Whether the server of `endpoint` runs on this machine (its host; a socket directory is its host too). */
export function endpointOnThisMachine(endpoint: DbEndpoint): boolean {
  return onThisMachine(endpoint.params['hostaddr'] ?? endpoint.host);
}
