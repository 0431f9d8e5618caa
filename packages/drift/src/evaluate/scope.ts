/**
 * Drift decision for one scope (a device, or the fleet) of one model version: per-variable
 * statistics, Holm across variables, then the two gates of research §13.4 — significance AND an
 * effect size above both the PSI band and the sample-size floor.
 */
import type { ReferenceProfile } from '../profile-schema.ts';
import { holmAdjust } from '../stats/multiple-testing.ts';
import { latencyQuantile } from '../window/latency.ts';
import { checkWindow, type WindowStats } from '../window/window.ts';
import { type StatisticOptions, type VariableStatistics, variableStatistics } from './variable.ts';

export type DriftStatus = 'ok' | 'warning' | 'drift';
export type ScopeStatus = DriftStatus | 'insufficient-data';

export interface EvaluationOptions extends StatisticOptions {
  /** Family-wise error rate across a scope's variables (Holm; default 0.01). */
  alpha?: number;
  /** PSI bands (defaults 0.1 warning, 0.25 drift: the industry rule). */
  warnPsi?: number;
  driftPsi?: number;
  /** Override the profile's minimum window M_min. */
  minWindow?: number;
}

export interface VariableResult extends VariableStatistics {
  status: ScopeStatus;
  /** Holm-adjusted p-value across the scope's variables. */
  pAdjusted: number;
}

export interface PerformanceEstimate {
  /** Confidence-based estimate of accuracy (CBPE) over the scope's predictions. */
  estimatedAccuracy: number;
  referenceAccuracy: number;
  /** referenceAccuracy ± 3·SE(M): outside it the estimate says the model does worse (or better). */
  lower: number;
  upper: number;
  n: number;
  status: DriftStatus;
  /** Binary classifiers: estimated precision, recall and F1. */
  precision?: number;
  recall?: number;
  f1?: number;
}

export interface ScopeEvaluation {
  status: ScopeStatus;
  /** Predictions in the evaluated (merged) window. */
  n: number;
  minWindow: number;
  /** Variables at warning or drift, worst first (by PSI). */
  drifted: string[];
  /** Share of variables at drift (Evidently's dataset-drift share). */
  driftShare: number;
  variables: VariableResult[];
  errorRate: number;
  latencyP50Ms?: number;
  latencyP95Ms?: number;
  performance?: PerformanceEstimate;
}

const rank: Record<ScopeStatus, number> = { 'insufficient-data': -1, ok: 0, warning: 1, drift: 2 };

/** The worse of two statuses. */
export function worst<T extends ScopeStatus>(a: T, b: T): T {
  return rank[a] >= rank[b] ? a : b;
}

/** Evaluate one merged window against its profile. Throws DRIFT_PROFILE_MISMATCH if it does not fit. */
export function evaluateScope(
  profile: ReferenceProfile,
  window: WindowStats,
  options: EvaluationOptions = {},
): ScopeEvaluation {
  checkWindow(profile, window);
  const minWindow = options.minWindow ?? profile.minWindow;
  const alpha = options.alpha ?? 0.01;
  const warnPsi = options.warnPsi ?? 0.1;
  const driftPsi = options.driftPsi ?? 0.25;
  const stats = profile.variables.map((v, i) => variableStatistics(v, window.vars[i]!, options));
  const adjusted = holmAdjust(stats.map((s) => s.pValue));
  const variables: VariableResult[] = stats.map((s, i) => {
    const pAdjusted = adjusted[i]!;
    let status: ScopeStatus = 'ok';
    if (s.n < minWindow) status = 'insufficient-data';
    else if (pAdjusted < alpha) {
      if (s.psi >= Math.max(driftPsi, s.psiFloor)) status = 'drift';
      else if (s.psi >= Math.max(warnPsi, s.psiFloor)) status = 'warning';
    }
    return { ...s, status, pAdjusted };
  });
  const flagged = variables.filter((v) => v.status === 'warning' || v.status === 'drift');
  flagged.sort((a, b) => rank[b.status] - rank[a.status] || b.psi - a.psi);
  let status: ScopeStatus = window.n < minWindow ? 'insufficient-data' : 'ok';
  if (status === 'ok') for (const v of flagged) status = worst(status, v.status);
  const calls = window.latency.reduce((s, c) => s + c, 0);
  const evaluation: ScopeEvaluation = {
    status,
    n: window.n,
    minWindow,
    drifted: flagged.map((v) => v.name),
    driftShare: variables.length
      ? variables.filter((v) => v.status === 'drift').length / variables.length
      : 0,
    variables,
    errorRate: calls > 0 ? window.errors / calls : 0,
  };
  const p50 = latencyQuantile(window.latency, 0.5);
  const p95 = latencyQuantile(window.latency, 0.95);
  if (p50 !== undefined) evaluation.latencyP50Ms = p50;
  if (p95 !== undefined) evaluation.latencyP95Ms = p95;
  const performance = performanceEstimate(profile, window);
  if (performance) evaluation.performance = performance;
  return evaluation;
}

/** CBPE: expected accuracy against the reference accuracy with a ±3·SE band (NannyML). */
export function performanceEstimate(
  profile: ReferenceProfile,
  window: WindowStats,
): PerformanceEstimate | undefined {
  const ref = profile.classifier?.accuracy;
  const c = window.cbpe;
  if (ref === undefined || !c || c.n === 0) return undefined;
  const estimated = c.correct / c.n;
  const se = Math.sqrt((ref * (1 - ref)) / c.n);
  const lower = Math.max(0, ref - 3 * se);
  const upper = Math.min(1, ref + 3 * se);
  const out: PerformanceEstimate = {
    estimatedAccuracy: estimated,
    referenceAccuracy: ref,
    lower,
    upper,
    n: c.n,
    status: estimated < lower || estimated > upper ? 'warning' : 'ok',
  };
  if (c.tp !== undefined) {
    const { tp, fp, fn } = c as Required<typeof c>;
    out.precision = tp + fp > 0 ? tp / (tp + fp) : Number.NaN;
    out.recall = tp + fn > 0 ? tp / (tp + fn) : Number.NaN;
    out.f1 = tp + 0.5 * (fp + fn) > 0 ? tp / (tp + 0.5 * (fp + fn)) : Number.NaN;
  }
  return out;
}
