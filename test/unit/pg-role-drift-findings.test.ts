import { describe, expect, it } from 'vitest';
import { plannedPasswordFindings, roleDriftFindings, type LoginRole } from '../../adapters/postgres/postgres-role-drift.js';
import { scramVerifier } from '../../adapters/postgres/postgres-scram.js';

const scram = (salt: string) => `SCRAM-SHA-256$4096:${salt}$c3RvcmVk:c2VydmVy`;
const role = (name: string, over: Partial<LoginRole> = {}): LoginRole => ({ name, canLogin: true, hash: scram('c2FsdDE='), validUntil: null, memberOf: [], ...over });
const now = new Date('2026-12-06T00:00:00Z');
const targetRoleNames = new Set(['app', 'app_rw', 'other']);
const only = (s: LoginRole, t: LoginRole) => roleDriftFindings([s], [t], { targetRoleNames, now });

describe('login roles that exist on both servers but differ (PostgreSQL check)', () => {
  it('the same verifier, a role only one side has, a source role that cannot log in: nothing', () => {
    expect(only(role('app'), role('app'))).toEqual([]);
    expect(roleDriftFindings([role('app')], [role('other')], { targetRoleNames, now })).toEqual([]);
    expect(only(role('app', { canLogin: false }), role('app', { canLogin: false, hash: null }))).toEqual([]);
  });

  it('NOLOGIN or an expired password on the target is a blocker naming the statement that mends it', () => {
    const [nologin] = only(role('app'), role('app', { canLogin: false }));
    expect(nologin).toMatchObject({ severity: 'blocker', check: 'roles', object: 'app', message: expect.stringMatching(/NOLOGIN on the target/), fix: 'ALTER ROLE "app" LOGIN on the target' });
    const [expired] = only(role('app'), role('app', { validUntil: new Date('2026-01-01T00:00:00Z') }));
    expect(expired).toMatchObject({ severity: 'blocker', message: expect.stringMatching(/expired on the target/) });
    // Expired on both: the source refuses it today as well, nothing changes at the switch.
    expect(only(role('app', { validUntil: new Date('2026-01-01T00:00:00Z') }), role('app', { validUntil: new Date('2025-01-01T00:00:00Z') }))).toEqual([]);
  });

  it('two md5 hashes that differ are two passwords: a blocker; a missing password on the target too', () => {
    const [md5] = only(role('app', { hash: `md5${'a'.repeat(32)}` }), role('app', { hash: `md5${'b'.repeat(32)}` }));
    expect(md5).toMatchObject({ severity: 'blocker', message: 'role app has another password on the target (md5 hashes differ)' });
    expect(md5!.fix).toMatch(/SELECT rolpassword FROM pg_authid WHERE rolname = 'app' on the source/);
    expect(only(role('app'), role('app', { hash: null }))[0]).toMatchObject({ severity: 'blocker', message: expect.stringMatching(/none on the target/) });
  });

  it('SCRAM verifiers with other salts may hold one password: a warning naming the pooler case; findings never hold a hash', () => {
    const f = only(role('app'), role('app', { hash: scram('c2FsdDI=') }));
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ severity: 'warning', message: expect.stringMatching(/scram, salted: the same password gives another verifier.*PgBouncer/) });
    const mixed = only(role('app', { hash: `md5${'a'.repeat(32)}` }), role('app'));
    expect(mixed[0]).toMatchObject({ severity: 'warning', message: expect.stringMatching(/md5 on the source, scram on the target/) });
    expect(JSON.stringify([...f, ...mixed])).not.toMatch(/SCRAM-SHA-256\$|md5a{32}|c2FsdD/);
  });

  it('a membership the target lacks in a group it has is a blocker; one in a group sync will create is not', () => {
    const [f] = only(role('app', { memberOf: ['app_rw', 'reporting'] }), role('app'));
    expect(f).toMatchObject({ severity: 'blocker', message: 'role app is a member of app_rw on the source but not on the target', fix: expect.stringMatching(/^GRANT "app_rw" TO "app" on the target/) });
    expect(only(role('app', { memberOf: ['app_rw'] }), role('app', { memberOf: ['app_rw', 'other'] }))).toEqual([]);
  });

  it('a role whose password the plan gives (roles.passwordEnv): its verifier is not compared, its LOGIN still is', () => {
    const plan = { targetRoleNames, now, passwordsFromPlan: new Set(['app']) };
    expect(roleDriftFindings([role('app')], [role('app', { hash: scram('b3RoZXI=') })], plan)).toEqual([]);
    expect(roleDriftFindings([role('app')], [role('app', { canLogin: false })], plan)).toHaveLength(1);
  });

  it('a revert: NOLOGIN on the old source from this plan’s strict fence is not a finding; names in fixes are quoted', () => {
    expect(roleDriftFindings([role('app')], [role('app', { canLogin: false })], { targetRoleNames, now, lockedByFence: new Set(['app']) })).toEqual([]);
    const [odd] = only(role('Odd"Role'), role('Odd"Role', { canLogin: false }));
    expect(odd!.fix).toBe('ALTER ROLE "Odd""Role" LOGIN on the target');
  });

  it('an existing target role named in roles.passwordEnv must accept that password (sync does not change it)', async () => {
    const target = [role('app', { hash: scramVerifier('planned') }), role('other', { hash: scramVerifier('x') })];
    expect(await plannedPasswordFindings(target, { app: 'planned' })).toEqual([]);
    const [f] = await plannedPasswordFindings(target, { app: 'typo' });
    expect(f).toMatchObject({ severity: 'blocker', object: 'app', message: 'role app exists on the target with another password than roles.passwordEnv gives' });
    expect(JSON.stringify(f)).not.toMatch(/typo|planned/);
  });

  it('without pg_authid on either side (managed) only LOGIN and VALID UNTIL are compared', () => {
    expect(only(role('app', { hash: undefined }), role('app', { hash: null }))).toEqual([]);
    expect(only(role('app'), role('app', { hash: undefined, canLogin: false }))).toHaveLength(1);
  });
});
