import { TOOL_SCHEMA } from './postgres-replication.js';

/**
 * The namespaces a plan moves, for a query that joins pg_namespace as `n` and passes the plan's schema (or null
 * for the whole database) as $1: neither the catalogs, TOAST nor the tool's own schema.
 */
export const USER_NAMESPACE = `n.nspname NOT IN ('pg_catalog', 'information_schema', '${TOOL_SCHEMA}') AND n.nspname !~ '^pg_toast' AND ($1::text IS NULL OR n.nspname = $1)`;
