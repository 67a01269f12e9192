import type { FenceTarget, ReadOnlyStatusResult, ScopeStatus, SessionInfo } from '../../src/readonly/types.js';
import { explicitSetting, isOn, serverEffective } from './postgres-guc-fence.js';
import { preparedInScope } from './postgres-leak-watch.js';
import { assertTargetExists, gucScopeOf, type PgReadOnlyContext } from './postgres-readonly-context.js';
import { fenceKindOf, schemaFenceGaps, schemaTables } from './postgres-schema-fence.js';
import { publicSession, sessionsInScope } from './postgres-sessions.js';
import { READ_ONLY_GUC } from './postgres-sql.js';

/** What is fenced in each target, and every session or role setting that could still write there. */
export async function readOnlyStatus(c: PgReadOnlyContext, targets: Array<FenceTarget & { fencedAt?: string }>): Promise<Omit<ReadOnlyStatusResult, 'action' | 'engine' | 'server'>> {
  const version = (await c.q<{ v: string }>(`SELECT current_setting('server_version') AS v`))[0]!.v;
  const me = (await c.q<{ su: boolean; stats: boolean; settings: boolean }>(`SELECT rolsuper AS su, pg_has_role(current_user, 'pg_read_all_stats', 'USAGE') AS stats FROM pg_roles WHERE rolname = current_user`))[0];
  const su = me?.su ?? false;
  // pg_file_settings (the server-level value) is superuser-only; pg_monitor shows a managed admin every session.
  const readsFiles = su;
  const warnings: string[] = [];
  if (!su)
    warnings.push(
      me?.stats
        ? `role "${c.ep.user}" is not a superuser: the server-level setting in the configuration files is hidden (the provider's)`
        : `role "${c.ep.user}" is neither a superuser nor in pg_monitor: the server-level setting and other users' sessions may be hidden`,
    );
  const serverValue = readsFiles ? await serverEffective(c) : (await c.q<{ v: string }>(`SELECT boot_val AS v FROM pg_settings WHERE name = $1`, [READ_ONLY_GUC]))[0]!.v;
  const scopes: ScopeStatus[] = [];
  for (const target of targets) {
    if (target.scope === 'schema') {
      await assertTargetExists(c, target);
      scopes.push(await schemaStatus(c, target));
      continue;
    }
    const scope = gucScopeOf(target);
    await assertTargetExists(c, target);
    const setting = scope === 'server' ? (readsFiles ? await explicitSetting(c, 'server') : null) : await explicitSetting(c, scope, target.name);
    const effective = scope === 'server' ? serverValue : (setting ?? serverValue);
    const sessions = await sessionsInScope(c.client, target);
    const couldWrite: SessionInfo[] = [];
    const fencedAt = target.fencedAt ? new Date(target.fencedAt) : undefined;
    const supers = new Set((await c.q<{ rolname: string }>(`SELECT rolname FROM pg_roles WHERE rolsuper`)).map((r) => r.rolname));
    for (const s of sessions) {
      if (s.hasWriteXid) couldWrite.push(publicSession(s, 'inside a write transaction'));
      else if (scope !== 'server' && fencedAt && s.backendStart < fencedAt) couldWrite.push(publicSession(s, 'connected before the fence: the setting reaches new sessions only'));
      else if (supers.has(s.user)) couldWrite.push(publicSession(s, 'superuser: can override the read-only default'));
    }
    couldWrite.push(...(await overridingRoles(c, target)));
    couldWrite.push(...(await preparedInScope(c, target)));
    scopes.push({
      scope: target.scope,
      ...(target.name ? { name: target.name } : {}),
      setting: setting ?? (scope === 'server' ? serverValue : null),
      readOnly: isOn(effective),
      persistent: true,
      sessions: sessions.length,
      couldWrite,
    });
  }
  return { version, scopes, warnings };
}

async function schemaStatus(c: PgReadOnlyContext, target: FenceTarget): Promise<ScopeStatus> {
  const tables = await schemaTables(c.client, target.name!);
  const fenced = tables.filter((t) => t.trigger !== null);
  const kind = fenceKindOf(fenced);
  const sessions = await sessionsInScope(c.client, { scope: 'database', name: c.ep.database! });
  return {
    scope: 'schema',
    name: target.name!,
    setting: fenced.length ? `fence trigger (${kind === 'hold' ? 'advisory' : 'always'}) on ${fenced.length}/${tables.length} table(s)` : null,
    readOnly: tables.length > 0 && fenced.length === tables.length,
    persistent: true,
    sessions: sessions.length,
    couldWrite: fenced.length ? schemaFenceGaps(tables, kind) : [],
  };
}

/** Role settings that turn the read-only default back off; they take precedence over database and server. */
async function overridingRoles(c: PgReadOnlyContext, target: FenceTarget): Promise<SessionInfo[]> {
  const rows = await c.q<{ rolname: string; datname: string | null }>(
    `SELECT r.rolname, d.datname
       FROM pg_db_role_setting s
       JOIN pg_roles r ON r.oid = s.setrole
       LEFT JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) AS cfg
      WHERE cfg ~* $1
        AND ($2::text IS NULL OR s.setdatabase = 0 OR d.datname = $2)
        AND ($3::text IS NULL OR r.rolname = $3)`,
    [`^${READ_ONLY_GUC}=(off|false|no|0|f|n)$`, target.scope === 'database' ? target.name : null, target.scope === 'role' ? target.name : null],
  );
  return rows.map((r) => ({
    id: `role:${r.rolname}`,
    user: r.rolname,
    ...(r.datname ? { database: r.datname } : {}),
    reason: `role setting ${READ_ONLY_GUC}=off${r.datname ? ` in database ${r.datname}` : ''} overrides the fence`,
  }));
}
