import { UsageError } from '../../src/errors.js';

/** Quotes an identifier for PostgreSQL. Every name the tool puts into SQL goes through here. */
export function quoteIdent(name: string): string {
  if (name.length === 0) throw new UsageError('empty SQL identifier', 'give a non-empty name');
  if (name.includes('\0')) throw new UsageError('SQL identifier contains a NUL byte', 'remove the NUL byte from the name');
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Quotes a string literal for utility statements that cannot take parameters (ALTER ... SET).
 * Backslashes switch to the E'' form so the result is right whatever standard_conforming_strings says.
 */
export function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new UsageError('SQL literal contains a NUL byte', 'remove the NUL byte from the value');
  const body = value.replace(/'/g, "''");
  return value.includes('\\') ? `E'${body.replace(/\\/g, '\\\\')}'` : `'${body}'`;
}

export const READ_ONLY_GUC = 'default_transaction_read_only';

/** `ALTER SYSTEM|DATABASE|ROLE ... SET/RESET default_transaction_read_only`; `value` null means RESET. */
export function fenceSettingSql(scope: 'server' | 'database' | 'role', name: string | undefined, value: string | null): string {
  const action = value === null ? `RESET ${READ_ONLY_GUC}` : `SET ${READ_ONLY_GUC} = ${quoteLiteral(value)}`;
  switch (scope) {
    case 'server':
      return `ALTER SYSTEM ${action}`;
    case 'database':
      return `ALTER DATABASE ${quoteIdent(required(name, scope))} ${action}`;
    case 'role':
      return `ALTER ROLE ${quoteIdent(required(name, scope))} ${action}`;
  }
}

export function loginSql(role: string, canLogin: boolean): string {
  return `ALTER ROLE ${quoteIdent(role)} ${canLogin ? 'LOGIN' : 'NOLOGIN'}`;
}

function required(name: string | undefined, scope: string): string {
  if (!name) throw new UsageError(`${scope} scope needs a name`, `set readOnly.name in the plan (or --name <${scope}>)`);
  return name;
}
