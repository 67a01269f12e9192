/** The public API of cutover. The CLI uses exactly this. */
export { readOnlyOn, readOnlyOff, readOnlyStatus, FenceLeakError, READ_ONLY_DEFAULTS, type ReadOnlyOptions } from './readonly/readonly.js';
export type * from './readonly/types.js';
export * from './errors.js';
export { parseDbUrl, type DbEndpoint, type Engine } from './util/db-url.js';
export { redactUrl, redactText } from './util/redact.js';
export { parseDuration, parseSize } from './util/units.js';
export { PostgresSandbox, type PostgresSandboxOptions } from './sandbox/postgres-sandbox.js';
export { stopAllSandboxes } from './sandbox/registry.js';
