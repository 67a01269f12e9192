export { loadPlan, parsePlan, PLAN_DEFAULTS } from './parse-plan.js';
export { planId } from './plan-id.js';
export { resolvePlanSecrets, type PlanSecrets } from './secrets.js';
export type * from './types.js';
export type * from './plan-document.js';
