import { describe, expect, it } from 'vitest';
import { missingPasswordFindings, privilegeFindings, protectedSessionFindings, type PrivilegeCheckInput } from '../../adapters/postgres/postgres-managed-checks.js';
import type { PgPrivileges } from '../../adapters/postgres/postgres-privileges.js';

const admin = (over: Partial<PgPrivileges> = {}): PgPrivileges => ({
  user: 'cutover_admin',
  major: 17,
  superuser: false,
  createRole: true,
  createDb: true,
  replication: true,
  signalBackend: true,
  monitor: true,
  createSubscription: true,
  ...over,
});
const input = (over: Partial<PrivilegeCheckInput> = {}): PrivilegeCheckInput => ({
  requested: 'auto',
  source: admin(),
  target: admin(),
  replication: true,
  ownReplicationAccount: false,
  fence: { scope: 'database', mode: 'enforced' },
  ...over,
});
const blockers = (i: PrivilegeCheckInput) => privilegeFindings(i).filter((f) => f.severity === 'blocker');

describe('privilege findings of cutover check (PostgreSQL)', () => {
  it('auto with a fully granted admin on 17 → 17: managed, no blocker', () => {
    const f = privilegeFindings(input());
    expect(f).toEqual([expect.objectContaining({ severity: 'info', message: expect.stringMatching(/^managed profile/) })]);
  });

  it('auto with two superusers: superuser profile, no finding at all', () => {
    expect(privilegeFindings(input({ source: admin({ superuser: true }), target: admin({ superuser: true }) }))).toEqual([]);
  });

  it('privileges: superuser on a non-superuser names the side and the way out', () => {
    const b = blockers(input({ requested: 'superuser', target: admin({ superuser: true }) }));
    expect(b).toHaveLength(1);
    expect(b[0]).toMatchObject({ object: 'source', message: expect.stringMatching(/not a superuser/), fix: expect.stringMatching(/privileges: managed/) });
  });

  it('each missing privilege is its own blocker naming the privilege and the provider way', () => {
    const b = blockers(input({ source: admin({ replication: false, signalBackend: false, monitor: false }), target: admin({ createSubscription: false }), ownReplicationAccount: true }));
    const byMessage = Object.fromEntries(b.map((x) => [x.message, x.fix]));
    expect(byMessage['cutover_admin lacks the REPLICATION attribute']).toMatch(/rds_replication/);
    expect(byMessage['cutover_admin is not a member of pg_signal_backend']).toMatch(/GRANT pg_signal_backend/);
    expect(byMessage['cutover_admin is not a member of pg_monitor (pg_read_all_stats)']).toMatch(/GRANT pg_monitor/);
    expect(byMessage['cutover_admin is not a member of pg_create_subscription']).toMatch(/GRANT pg_create_subscription/);
    expect(b).toHaveLength(4);
  });

  it('server scope is refused in the managed profile with the alternative', () => {
    const b = blockers(input({ fence: { scope: 'server', mode: 'enforced' } }));
    expect(b).toEqual([expect.objectContaining({ message: expect.stringMatching(/ALTER SYSTEM/), fix: expect.stringMatching(/readOnly.scope: database/) })]);
  });

  it('advisory mode needs neither pg_signal_backend nor pg_monitor', () => {
    expect(blockers(input({ source: admin({ signalBackend: false, monitor: false }), fence: { scope: 'database', mode: 'advisory' } }))).toEqual([]);
  });

  it('a PostgreSQL 15 source cannot make the replication account: the plan must name one', () => {
    const b = blockers(input({ source: admin({ major: 15 }) }));
    expect(b).toEqual([expect.objectContaining({ message: expect.stringMatching(/PostgreSQL 15: only a superuser creates a role with REPLICATION/), fix: expect.stringMatching(/source.replication/) })]);
    expect(blockers(input({ source: admin({ major: 15 }), ownReplicationAccount: true }))).toEqual([]);
  });

  it('a target before 16 cannot subscribe without a superuser; method dump needs no subscription', () => {
    expect(blockers(input({ target: admin({ major: 15 }), ownReplicationAccount: true }))[0]?.message).toMatch(/CREATE SUBSCRIPTION needs a superuser before PostgreSQL 16/);
    expect(blockers(input({ target: admin({ major: 15 }), replication: false }))).toEqual([]);
  });

  it('privileges: managed on superusers is honoured (a rehearsal of a managed run)', () => {
    const f = privilegeFindings(input({ requested: 'managed', source: admin({ superuser: true }), target: admin({ superuser: true }) }));
    expect(f[0]?.message).toMatch(/managed profile: source cutover_admin \(superuser\)/);
  });

  it('roles created without a password are warnings naming the role and the fix', () => {
    expect(missingPasswordFindings(['app'])).toEqual([expect.objectContaining({ severity: 'warning', object: 'app', fix: expect.stringMatching(/ALTER ROLE app PASSWORD/) })]);
  });

  it('provider superuser sessions on the database: a warning naming user and application_name; a blocker in strict mode', () => {
    const agent = { pid: 4242, user: 'rdsadmin', application: 'provider agent' };
    const [w] = protectedSessionFindings([agent], 'shop', 'enforced');
    expect(w).toMatchObject({ severity: 'warning', check: 'sessions', object: 'pid 4242' });
    expect(w!.message).toBe('superuser session pid 4242 (user rdsadmin, application_name provider agent) on database shop: the admin may not end it');
    expect(protectedSessionFindings([agent], 'shop', 'strict')).toEqual([expect.objectContaining({ severity: 'blocker', fix: expect.stringMatching(/readOnly.mode: enforced/) })]);
    expect(protectedSessionFindings([], 'shop', 'strict')).toEqual([]);
  });
});
