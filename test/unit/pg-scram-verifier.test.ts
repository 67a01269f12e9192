import { describe, expect, it } from 'vitest';
import { saslPrep, scramVerifier } from '../../adapters/postgres/postgres-scram.js';

// Verifiers PostgreSQL 15 stored in pg_authid for CREATE ROLE ... PASSWORD with password_encryption = scram-sha-256.
const MADE_BY_POSTGRES = [
  { password: 'pencil', verifier: 'SCRAM-SHA-256$4096:b736oS93S8QMCdPDKj/9SA==$C6j2EsMlYtN3977/arfCx8SoEc1ubkLN2vI+3p27E6A=:QU5d9a5yg9qhHPAswFORkH71kcgLkE9FA1gHaQ12Ffo=' },
  { password: 'pässwörd x', verifier: 'SCRAM-SHA-256$4096:hZatJlQ+OGjcGFfialvKBw==$XTlFYAEHRp3J5PgCS/4+b9o1srd9C2/Y8pVCFsv2sko=:35GjpUg4BXtx7N0wMdktYWuIl86Mx2wwSKeWCuA4pbQ=' },
];

describe('SCRAM-SHA-256 verifier made client-side', () => {
  it.each(MADE_BY_POSTGRES)('is byte for byte what PostgreSQL stores for "$password" with the same salt', ({ password, verifier }) => {
    const salt = Buffer.from(verifier.split('$')[1]!.split(':')[1]!, 'base64');
    expect(scramVerifier(password, salt)).toBe(verifier);
  });

  it('a fresh salt each time, and the password nowhere in the verifier', () => {
    const a = scramVerifier('s3cret-Pw');
    expect(a).not.toBe(scramVerifier('s3cret-Pw'));
    expect(a).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}$/);
    expect(a).not.toContain('s3cret');
  });

  it('SASLprep: non-ASCII spaces map to a space, soft hyphens go, compatibility forms fold (NFKC); ASCII unchanged', () => {
    expect(saslPrep('a\u00a0b')).toBe('a b');
    expect(saslPrep('pa\u00adss')).toBe('pass');
    expect(saslPrep('\u2168')).toBe('IX');
    expect(saslPrep('plain ASCII ~')).toBe('plain ASCII ~');
  });
});
