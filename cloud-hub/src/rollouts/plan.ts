/** Rollout plans: defaults, and the failure budget a plan allows. */
import type { RolloutPlan } from '../store/rollouts.ts';

export const defaultPlan: RolloutPlan = {
  batches: ['100%'],
  successThresholdPct: 100,
  maxFailures: '0',
  onFailure: 'pause',
  soakSeconds: 0,
  shadowSeconds: 0,
  deviceTimeoutSeconds: 900,
  maxPerMinute: 0,
  maxConcurrentPerSite: 0,
  requireApproval: false,
  gates: {},
};

export function withDefaults(plan: Partial<RolloutPlan> | undefined): RolloutPlan {
  return { ...defaultPlan, ...plan, gates: { ...defaultPlan.gates, ...plan?.gates } };
}

/** Failures allowed before the rollout stops: "5" devices or "5%" of those targeted. */
export function failureBudget(plan: RolloutPlan, targeted: number): number {
  const spec = plan.maxFailures;
  return spec.endsWith('%') ? Math.floor((Number(spec.slice(0, -1)) / 100) * targeted) : Number(spec);
}

/** The `site:NAME` tag of a device, for per-site disruption budgets. */
export function siteOf(tags: readonly string[]): string | undefined {
  return tags.find((t) => t.startsWith('site:'));
}
