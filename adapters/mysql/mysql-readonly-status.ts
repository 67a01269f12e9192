import type { FenceTarget, ReadOnlyStatusResult, ScopeStatus, SessionInfo } from '../../src/readonly/types.js';
import { bypassAccounts, bypassInfo, bypassWarning, reachable } from './mysql-accounts.js';
import { flavorLabel } from './mysql-flavor.js';
import { resolveProfile } from './mysql-privilege-profile.js';
import { mysqlScopeOf, type MysqlReadOnlyContext } from './mysql-readonly-context.js';
import { schemaWriters } from './mysql-schema-fence.js';
import { schemaState } from './mysql-schema-readonly.js';
import { serverState } from './mysql-server-fence.js';
import { clientSessions, publicSession } from './mysql-sessions.js';

/** What is fenced in each target, and every session or account that could still write there. */
export async function readOnlyStatus(c: MysqlReadOnlyContext, targets: Array<FenceTarget & { fencedAt?: string }>): Promise<Omit<ReadOnlyStatusResult, 'action' | 'engine' | 'server'>> {
  const { q, flavor } = c;
  const warnings: string[] = [];
  const scopes: ScopeStatus[] = [];
  const sessions = await clientSessions(q);
  for (const target of targets) {
    const scope = mysqlScopeOf(flavor, target);
    const couldWrite: SessionInfo[] = [];
    if (scope === 'server' && target.fencedAt && (await resolveProfile(q, flavor, 'auto')) === 'managed' && !(await serverState(c)).readOnly) {
      // The managed fence (mysql-managed-fence.ts) leaves read_only alone: its record is the fence.
      const writing = sessions.filter((x) => x.rowsModified > 0).map((w) => publicSession(w, 'inside a write transaction'));
      scopes.push({
        scope: target.scope,
        setting: 'read_only=OFF; application accounts locked and their write privileges revoked (managed profile)',
        readOnly: true,
        persistent: true,
        sessions: sessions.length,
        couldWrite: writing,
      });
    } else if (scope === 'server') {
      const s = await serverState(c);
      const setting = `read_only=${s.readOnly ? 'ON' : 'OFF'}${s.superReadOnly !== null ? `, super_read_only=${s.superReadOnly ? 'ON' : 'OFF'}` : ''}`;
      const bypass = s.superReadOnly ? [] : reachable(await bypassAccounts(q, flavor), sessions);
      const bypassUsers = new Set(bypass.map((b) => b.user));
      for (const w of sessions.filter((x) => x.rowsModified > 0)) {
        couldWrite.push(publicSession(w, bypassUsers.has(w.user) || !s.readOnly ? 'inside a write transaction' : 'inside a write transaction opened before read_only: its COMMIT fails'));
      }
      for (const b of bypass) couldWrite.push(bypassInfo(b, sessions));
      if (bypass.length > 0) warnings.push(bypassWarning(bypass, flavor));
      const persistent = s.readOnly && flavor.persist && s.persisted?.read_only === true;
      if (s.readOnly && !flavor.persist) warnings.push(`${flavorLabel(flavor)} has no SET PERSIST: read_only=ON is lost on a server restart`);
      scopes.push({ scope: target.scope, setting, readOnly: s.readOnly, persistent, sessions: sessions.length, couldWrite });
    } else if (scope === 'schema-grants') {
      const inSchema = sessions.filter((x) => x.database === target.name);
      const writers = await schemaWriters(q, target.name!);
      if (writers.length > 0) warnings.push(`accounts with write privileges on schema ${target.name}: ${writers.join(', ')}`);
      scopes.push({
        scope: target.scope,
        name: target.name!,
        setting: target.fencedAt ? 'write privileges revoked from the --role accounts (no native schema read-only)' : null,
        readOnly: target.fencedAt !== undefined,
        persistent: true,
        sessions: inSchema.length,
        couldWrite: inSchema.filter((x) => x.rowsModified > 0).map((x) => publicSession(x, 'inside a write transaction')),
      });
    } else {
      const ro = await schemaState(c, target.name!);
      const inSchema = sessions.filter((x) => x.database === target.name);
      scopes.push({
        scope: target.scope,
        name: target.name!,
        setting: ro ? 'READ ONLY=1' : 'READ ONLY=0',
        readOnly: ro,
        persistent: true,
        sessions: inSchema.length,
        couldWrite: ro ? [] : inSchema.filter((x) => x.rowsModified > 0).map((x) => publicSession(x, 'inside a write transaction')),
      });
    }
  }
  return { version: flavor.full, scopes, warnings };
}
