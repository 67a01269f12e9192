import type { EngineCapabilities } from '../src/engine/dialect.js';

/** What every engine must say about itself; the rest has a default. */
type OwnCapabilities = Pick<EngineCapabilities, 'readOnlyScopes' | 'urlEngines' | 'urlExample' | 'product'> & Partial<EngineCapabilities>;

/**
 * An engine's capabilities over the defaults a new engine starts from. The defaults are the cautious side:
 * no leak check beside the catch-up, tenants are databases copied inside their own fence window, and the
 * plan keys of other engines (`tables`, `accounts`, schema scopes) are refused.
 */
export function withDefaults(own: OwnCapabilities): EngineCapabilities {
  return {
    leakWatchScopes: [],
    schemaScope: false,
    tenantKinds: ['database'],
    wavesNeedDump: true,
    waveStream: false,
    keylessTables: false,
    copiesAccounts: false,
    parallelCopy: false,
    verifyAfterSwitch: false,
    cdcSlots: false,
    reverseReplication: false,
    rolePasswords: false,
    ...own,
  };
}
