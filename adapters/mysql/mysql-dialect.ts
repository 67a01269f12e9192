import type { CutoverConnectRequest, Dialect } from '../../src/engine/dialect.js';
import { mysqlCapabilities } from './mysql-capabilities.js';
import { MysqlCutover } from './mysql-cutover.js';
import { MysqlReadOnlyAdapter } from './mysql-readonly.js';
import { replicaConnectionName } from './mysql-replication.js';
import { queryMysqlTenants } from './mysql-tenants.js';
import { mysqlTransformConnection, runMysqlSqlTransform } from './mysql-transform.js';

async function connectCutover({ plan, planId, source, target, database, replicationAccount, reversePlanId }: CutoverConnectRequest): Promise<MysqlCutover> {
  return MysqlCutover.connect({
    source,
    target,
    database,
    method: plan.method,
    // A tenant of a wave by replication joins the wave's one stream (named after the wave).
    name: replicaConnectionName(plan.wave && plan.method === 'replication' ? plan.wave.planId : planId),
    ...(plan.wave && plan.method === 'replication' ? { sharedStream: true } : {}),
    ...(reversePlanId !== undefined ? { reverseName: replicaConnectionName(reversePlanId) } : {}),
    ...(replicationAccount ? { replicationAccount } : {}),
    verify: plan.verify,
    lockTimeoutMs: plan.readOnly.lockTimeoutMs,
    accounts: plan.accounts,
    namedAccounts: plan.readOnly.roles,
    fence: { scope: plan.readOnly.scope, mode: plan.readOnly.mode, roles: plan.readOnly.roles, privileges: plan.privileges ?? 'auto' },
    privileges: plan.privileges ?? 'auto',
    ...(plan.copy?.jobs !== undefined ? { copyJobs: plan.copy.jobs } : {}),
    ...(plan.copy?.splitAboveBytes !== undefined ? { copySplitBytes: plan.copy.splitAboveBytes } : {}),
  });
}

/** MySQL and MariaDB share one dialect: the server's flavor, detected on connecting, decides the SQL. */
export function mysqlDialect(engine: 'mysql' | 'mariadb'): Dialect {
  return {
    engine,
    capabilities: mysqlCapabilities(engine),
    connectCutover,
    connectReadOnly: (ep, lockTimeoutMs) => MysqlReadOnlyAdapter.connect(ep, lockTimeoutMs),
    queryTenants: queryMysqlTenants,
    runSqlTransform: runMysqlSqlTransform,
    transformCommandConnection: mysqlTransformConnection,
    ...(engine === 'mariadb' ? { rehearsalKit: async () => (await import('./mariadb-rehearsal.js')).mariadbKit } : {}),
  };
}
