import type { Router } from '../../src/engine/router.js';
import type { PlanSecrets } from '../../src/plan/secrets.js';
import type { Plan } from '../../src/plan/types.js';
import { ExecRouter } from './exec-router.js';
import { FileRouter } from './file-router.js';
import { HaproxyRouter } from './haproxy-router.js';
import { PgBouncerRouter } from './pgbouncer-router.js';

/** `router: { kind: none }`: the cutover fences and lifts, and applications find the target themselves. */
class NoRouter implements Router {
  readonly kind = 'none' as const;
  describe(): string {
    return 'no router';
  }
  async hold(): Promise<void> {}
  async pointTo(): Promise<void> {}
  async release(): Promise<void> {}
  async current(): Promise<undefined> {
    return undefined;
  }
  async preflight() {
    return [];
  }
  async close(): Promise<void> {}
}

/** The router a plan names, wired with its resolved secrets (see resolvePlanSecrets). */
export function createRouter(plan: Pick<Plan, 'router' | 'engine' | 'target' | 'stateDir'>, secrets: Pick<PlanSecrets, 'routerAdmin' | 'all'>): Router {
  const config = plan.router;
  switch (config.kind) {
    case 'none':
      return new NoRouter();
    case 'pgbouncer':
      return new PgBouncerRouter({ admin: config.admin, ...(secrets.routerAdmin !== undefined ? { adminPassword: secrets.routerAdmin } : {}), ini: config.ini, database: config.database });
    case 'file':
      return new FileRouter({ path: config.path, format: config.format, scheme: plan.engine, user: plan.target.user, ...(config.tenant !== undefined ? { tenant: config.tenant } : {}) });
    case 'exec':
      return new ExecRouter({
        command: config.command,
        ...(config.tenant !== undefined ? { tenant: config.tenant } : {}),
        ...(config.hold ? { hold: config.hold } : {}),
        ...(config.release ? { release: config.release } : {}),
        timeoutMs: config.timeoutMs,
        secrets: secrets.all,
      });
    case 'haproxy':
      return new HaproxyRouter({ socket: config.socket, backend: config.backend, server: config.server, stateDir: plan.stateDir });
  }
}
