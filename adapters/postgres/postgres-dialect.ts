import type { CutoverConnectRequest, Dialect } from '../../src/engine/dialect.js';
import { POSTGRES_CAPABILITIES } from './postgres-capabilities.js';
import { PostgresCutover } from './postgres-cutover.js';
import { leakSlotName } from './postgres-leak-decoding.js';
import { PostgresReadOnlyAdapter } from './postgres-readonly.js';
import { replicationName } from './postgres-replication.js';
import { queryPostgresTenants } from './postgres-tenants.js';
import { postgresTransformConnection, runPostgresSqlTransform } from './postgres-transform.js';

async function connectCutover({ plan, planId, source, target, database, schema, replicationAccount, rolePasswords, reversePlanId }: CutoverConnectRequest): Promise<PostgresCutover> {
  const name = replicationName(planId);
  return PostgresCutover.connect({
    source,
    target,
    database,
    ...(schema !== undefined ? { schema } : {}),
    method: plan.method,
    name,
    ...(replicationAccount ? { replicationAccount } : {}),
    ...(rolePasswords ? { rolePasswords } : {}),
    ...(reversePlanId !== undefined ? { reverseName: replicationName(reversePlanId) } : {}),
    sequenceGap: plan.sequences.gap,
    verify: plan.verify,
    lockTimeoutMs: plan.readOnly.lockTimeoutMs,
    privileges: plan.privileges ?? 'auto',
    fence: { scope: plan.readOnly.scope, mode: plan.readOnly.mode, roles: plan.readOnly.roles },
    ...(plan.tables ? { keyless: plan.tables.keyless } : {}),
    ...(plan.copy?.jobs !== undefined ? { copyJobs: plan.copy.jobs } : {}),
    ...(plan.copy?.splitAboveBytes !== undefined ? { copySplitBytes: plan.copy.splitAboveBytes } : {}),
    // Decoding reads one database: only a database-scope fence uses the slot.
    ...(plan.readOnly.scope === 'database' ? { leakSlot: leakSlotName(name) } : {}),
    ...(plan.cdc ? { cdc: { slots: plan.cdc.slots, ...(plan.cdc.plugin !== undefined ? { plugin: plan.cdc.plugin } : {}) } } : {}),
  });
}

export const postgresDialect: Dialect = {
  engine: 'postgres',
  capabilities: POSTGRES_CAPABILITIES,
  connectCutover,
  connectReadOnly: (ep, lockTimeoutMs) => PostgresReadOnlyAdapter.connect(ep, lockTimeoutMs),
  queryTenants: queryPostgresTenants,
  runSqlTransform: runPostgresSqlTransform,
  transformCommandConnection: postgresTransformConnection,
  rehearsalKit: async () => (await import('./postgres-rehearsal.js')).postgresKit,
};
