import { createHash } from 'node:crypto';
import type { Plan, PlanEndpoint } from './types.js';

function identity(e: PlanEndpoint): [string, number, string] {
  return [e.host.toLowerCase(), e.port, e.database ?? ''];
}

/**
 * A stable, file-name-safe id for journal and lock files: the same source, target and scope give the same
 * id whatever else the plan changes (limits, router, users, passwords), so a fixed plan resumes its journal.
 */
export function planId(plan: Pick<Plan, 'engine' | 'source' | 'target' | 'scope'>): string {
  const scope = [plan.scope.kind, [...plan.scope.names].sort()];
  const hash = createHash('sha256')
    .update(JSON.stringify([plan.engine, identity(plan.source), identity(plan.target), scope]))
    .digest('hex')
    .slice(0, 12);
  const label = (plan.scope.names[0] ?? plan.engine)
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 32);
  return label ? `${label}-${hash}` : hash;
}
