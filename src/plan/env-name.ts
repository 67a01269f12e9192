import type { Fields } from './plan-reader.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A key that names the environment variable holding a password: checked, never echoed when it is not a name. */
export function envName(f: Fields, key: string): string | undefined {
  const name = f.string(key);
  // Not echoed: what stands here instead of a variable name is often the password itself.
  if (name !== undefined && !ENV_NAME.test(name))
    return f.report(
      key,
      'is not an environment variable name (the value is not shown: it may be a password)',
      'name the variable that holds the password (letters, digits and _, e.g. SRC_PASSWORD), never the password itself',
    );
  return name;
}
