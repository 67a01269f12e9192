import type { Finding } from '../../src/engine/cutover-adapter.js';
import { serverMajor, type PgClient } from './postgres-connection.js';
import { quoteIdent, quoteLiteral } from './postgres-sql.js';

export interface SourceExtension {
  name: string;
  version: string;
  schema: string;
}

/** Extensions installed in the source database (plpgsql too: every server has it). */
export async function sourceExtensions(src: PgClient): Promise<SourceExtension[]> {
  const { rows } = await src.query<SourceExtension>(`SELECT e.extname AS name, e.extversion AS version, n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace ORDER BY 1`);
  return rows;
}

/** Dotted version comparison ("1.10" > "1.9"); parts that are not numbers compare as text. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.-]/);
  const pb = b.split(/[.-]/);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? '0';
    const y = pb[i] ?? '0';
    const d = /^\d+$/.test(x) && /^\d+$/.test(y) ? Number(x) - Number(y) : x.localeCompare(y);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

interface Available {
  versions: string[];
  defaultVersion: string | null;
}

async function availableOnTarget(dst: PgClient, names: string[]): Promise<Map<string, Available>> {
  const { rows } = await dst.query<{ name: string; version: string; d: string | null }>(
    `SELECT v.name, v.version, a.default_version AS d FROM pg_available_extension_versions v
       LEFT JOIN pg_available_extensions a ON a.name = v.name WHERE v.name = ANY($1::text[])`,
    [names],
  );
  const out = new Map<string, Available>();
  for (const r of rows) {
    const a = out.get(r.name) ?? { versions: [], defaultVersion: r.d };
    a.versions.push(r.version);
    out.set(r.name, a);
  }
  return out;
}

/**
 * Every extension of the source must be installable on the target at its version or a newer one (a major upgrade
 * brings newer extension versions); a missing one would fail the schema load half-way through sync.
 */
export async function extensionFindings(src: PgClient, dst: PgClient): Promise<Finding[]> {
  const exts = await sourceExtensions(src);
  if (exts.length === 0) return [];
  const avail = await availableOnTarget(
    dst,
    exts.map((e) => e.name),
  );
  const major = await serverMajor(dst);
  const f: Finding[] = [];
  for (const e of exts) {
    const a = avail.get(e.name);
    const install = `install it on the target server: the PostgreSQL ${major} contrib modules (Debian: postgresql-${major}, which includes contrib) or the extension's own package (Debian/PGDG: postgresql-${major}-${e.name.replace(/_/g, '-')})`;
    if (!a) {
      f.push({
        severity: 'blocker',
        check: 'extensions',
        object: e.name,
        message: `extension ${e.name} ${e.version} (schema ${e.schema}) is not available on the target`,
        why: 'the schema copy would stop half-way at its CREATE EXTENSION',
        fix: install,
      });
      continue;
    }
    if (a.versions.includes(e.version)) continue;
    const newest = [...a.versions].sort(compareVersions).at(-1)!;
    if (compareVersions(newest, e.version) < 0) {
      f.push({
        severity: 'blocker',
        check: 'extensions',
        object: e.name,
        message: `extension ${e.name} is ${e.version} on the source; the target offers at most ${newest}`,
        why: 'objects built on the newer version may not load into an older one',
        fix: `${install}, at version ${e.version} or newer`,
      });
    } else {
      f.push({
        severity: 'info',
        check: 'extensions',
        object: e.name,
        message: `extension ${e.name} ${e.version} is not available on the target; it is created at ${a.defaultVersion ?? newest}`,
        why: 'a newer major ships newer extension versions',
        fix: '—',
      });
    }
  }
  return f;
}

/**
 * Creates the source's extensions on the target before the schema is loaded, at the source's version where the
 * target has it (pg_dump's CREATE EXTENSION IF NOT EXISTS then keeps them). Only those in a schema that already
 * exists on the target: pg_dump creates the other schemas and would fail on one created before it.
 */
export async function createExtensions(src: PgClient, dst: PgClient): Promise<string[]> {
  const exts = await sourceExtensions(src);
  const avail = await availableOnTarget(
    dst,
    exts.map((e) => e.name),
  );
  const created: string[] = [];
  for (const e of exts) {
    const schemaThere = (await dst.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [e.schema])).rows.length > 0;
    const present = (await dst.query(`SELECT 1 FROM pg_extension WHERE extname = $1`, [e.name])).rows.length > 0;
    if (!schemaThere || present) continue;
    const version = avail.get(e.name)?.versions.includes(e.version) ? ` VERSION ${quoteLiteral(e.version)}` : '';
    await dst.query(`CREATE EXTENSION IF NOT EXISTS ${quoteIdent(e.name)} WITH SCHEMA ${quoteIdent(e.schema)}${version}`);
    created.push(e.name);
  }
  return created;
}
