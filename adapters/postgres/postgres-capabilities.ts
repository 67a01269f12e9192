import { withDefaults } from '../dialect-capabilities.js';

/** Driver-free: the plan parser reads these without loading `pg`. */
export const POSTGRES_CAPABILITIES = withDefaults({
  readOnlyScopes: ['database', 'server', 'role', 'schema'],
  // Every fence's leak check reads the source's WAL (or its sessions) from the fence on; the catch-up only reads.
  leakWatchScopes: ['database', 'server', 'role', 'schema'],
  schemaScope: true,
  tenantKinds: ['database', 'schema'],
  // Each tenant has its own publication and subscription: tenants replicate side by side.
  wavesNeedDump: false,
  keylessTables: true,
  // The initial copy runs COPY under the slot's snapshot with several workers (postgres-snapshot-copy.ts).
  parallelCopy: true,
  // Snapshots on both sides at the point of no return, compared in key chunks after the release.
  verifyAfterSwitch: true,
  // Logical slots of CDC consumers are made again on the target at the switch (postgres-cdc.ts).
  cdcSlots: true,
  // A publication and slot on the target made at the switch, a subscription on the old source (postgres-reverse.ts).
  reverseReplication: true,
  // Login roles sync creates get a SCRAM verifier made from the plan's password (postgres-scram.ts).
  rolePasswords: true,
  urlEngines: ['postgres'],
  urlExample: 'postgres://app@10.0.0.1:5432/shop',
  passwordEnv: 'PGPASSWORD',
  product: 'PostgreSQL',
  // The subscription is created from the maintenance database, and the moved database may not exist there yet.
  targetAdminDatabase: 'postgres',
  rehearsal: { sandboxes: '15 → 18, PgBouncer', plans: true, tenants: true },
});
