import { hostname, networkInterfaces } from 'node:os';
import type { DbEndpoint } from './db-url.js';

/**
 * Whether a server at `host` runs on this machine: a Unix socket, loopback, this machine's name or one of its
 * interfaces' addresses (names are not resolved).
 */
export function onThisMachine(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  if (h === '' || h.startsWith('/') || h === 'localhost' || h === '::1' || /^127\./.test(h) || h === hostname().toLowerCase()) return true;
  return Object.values(networkInterfaces()).some((addrs) => (addrs ?? []).some((a) => a.address.toLowerCase() === h));
}

/** Whether the server of `endpoint` runs on this machine (libpq's `host=` parameter, a socket directory, counts first). */
export function endpointOnThisMachine(endpoint: DbEndpoint): boolean {
  return onThisMachine(endpoint.params['host'] ?? endpoint.host);
}
