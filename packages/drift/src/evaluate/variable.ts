/**
 * One variable, reference vs current counts: every statistic the hub reports, and the evidence the
 * decision needs (a p-value and an effect size). research/drift.md §13.4, with two changes that the
 * sparse cells of real windows need: guard bins fold into the outer bins for PSI and χ² (a lone
 * out-of-range value must not look like drift), and invalid values are tested on their own
 * (Fisher's exact test) instead of as a χ² cell with a near-zero expectation.
 */
import type { CategoricalVariable, NumericVariable, ProfileVariable } from '../profile-schema.ts';
import { binnedKs, binnedWasserstein } from '../stats/binned.ts';
import { hellinger, jsDistance, lInfinity, proportions, psiSmoothed } from '../stats/distances.ts';
import { chi2Quantile } from '../stats/special.ts';
import { chi2Contingency, fisherExact, type TestResult } from '../stats/tests.ts';
import type { VariableWindow } from '../window/window.ts';

export interface VariableStatistics {
  name: string;
  kind: 'numeric' | 'categorical';
  /** Current values counted (including invalid). */
  n: number;
  /** Combined p-value (Bonferroni over this variable's tests). */
  pValue: number;
  /** PSI (ln) on ≤ psiBins coarse bins plus invalid, pseudo-count smoothed. */
  psi: number;
  /** Sample-size floor: χ²_{k−1, q}·(1/N + 1/M); a PSI below it is within noise. */
  psiFloor: number;
  /** Jensen–Shannon distance, base 2, on the full bins. */
  js: number;
  hellinger: number;
  chi2: TestResult;
  /** Invalid (NaN/Inf/missing) share now and in the reference, and Fisher's p for the difference. */
  invalidRate: number;
  referenceInvalidRate: number;
  invalidPValue: number;
  ks?: { d: number; pValue: number };
  /** Binned W1 divided by the reference std (Evidently's normalisation). */
  wasserstein?: number;
  /** (current mean − reference mean)/reference std, and current std / reference std. */
  meanShift?: number;
  stdRatio?: number;
  mean?: number;
  std?: number;
  outOfRangeRate?: number;
  /** Categorical: the largest proportion change and its category. */
  linf?: { value: number; category: string };
  reference: { labels: string[]; proportions: number[] };
  current: { proportions: number[] };
}

export interface StatisticOptions {
  /** Pseudo-count per bin for PSI (default 0.5, Jeffreys). */
  pseudoCount?: number;
  /** PSI on at most this many value bins (default 10: deciles). */
  psiBins?: number;
  /** Quantile of χ²_{k−1} for the PSI floor (default 0.99). */
  floorQuantile?: number;
}

const sum = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0);

/** Drop bins empty on both sides: they carry no evidence, and smoothing them would bias PSI up. */
function nonEmpty(a: readonly number[], b: readonly number[]): [number[], number[]] {
  const keep = a.map((x, i) => x + b[i]! > 0);
  return [a.filter((_, i) => keep[i]), b.filter((_, i) => keep[i])];
}

function group(values: readonly number[], groups: number): number[] {
  const size = Math.ceil(values.length / groups);
  const out: number[] = [];
  for (let i = 0; i < values.length; i += size) out.push(sum(values.slice(i, i + size)));
  return out;
}

function psiWithFloor(ref: number[], cur: number[], o: StatisticOptions): { psi: number; floor: number } {
  const [r, c] = nonEmpty(ref, cur);
  const N = sum(r);
  const M = sum(c);
  if (r.length < 2 || N === 0 || M === 0) return { psi: 0, floor: Number.POSITIVE_INFINITY };
  return {
    psi: psiSmoothed(r, c, o.pseudoCount ?? 0.5),
    floor: chi2Quantile(o.floorQuantile ?? 0.99, r.length - 1) * (1 / N + 1 / M),
  };
}

function invalidTest(ref: readonly number[], cur: readonly number[]) {
  const rInv = ref[0]!;
  const cInv = cur[0]!;
  const rN = sum(ref);
  const cN = sum(cur);
  return {
    invalidRate: cN ? cInv / cN : 0,
    referenceInvalidRate: rN ? rInv / rN : 0,
    invalidPValue: rInv + cInv > 0 && rN > 0 && cN > 0 ? fisherExact(rInv, rN - rInv, cInv, cN - cInv) : 1,
  };
}

function numericStatistics(v: NumericVariable, w: VariableWindow, o: StatisticOptions): VariableStatistics {
  const ref = v.counts;
  const cur = w.counts;
  const K = v.edges.length + 1;
  // Fold guards into the outer bins, then coarsen to ≤ psiBins groups.
  const fold = (c: readonly number[]) => {
    const bins = c.slice(2, 2 + K);
    bins[0]! += c[1]!;
    bins[K - 1]! += c[K + 2]!;
    return group(bins, o.psiBins ?? 10);
  };
  const refCoarse = fold(ref);
  const curCoarse = fold(cur);
  const chi2 = chi2Contingency(refCoarse, curCoarse, { minExpected: 5 });
  const ks = binnedKs(ref.slice(1), cur.slice(1));
  const inv = invalidTest(ref, cur);
  const { psi, floor } = psiWithFloor([ref[0]!, ...refCoarse], [cur[0]!, ...curCoarse], o);
  const finite = ks.m;
  const stats: VariableStatistics = {
    name: v.name,
    kind: 'numeric',
    n: sum(cur),
    pValue: Math.min(1, 3 * Math.min(ks.pValue, chi2.pValue, inv.invalidPValue)),
    psi,
    psiFloor: floor,
    js: sum(cur) > 0 ? jsDistance(ref, cur, 2) : 0,
    hellinger: sum(cur) > 0 ? hellinger(ref, cur) : 0,
    chi2,
    ...inv,
    ks: { d: ks.d, pValue: ks.pValue },
    reference: {
      labels: ['invalid', `< ${fmt(v.min)}`, ...binLabels(v), `> ${fmt(v.max)}`],
      proportions: proportions(ref),
    },
    current: { proportions: proportions(cur) },
  };
  if (finite > 0 && w.sum !== undefined && w.min !== undefined && w.max !== undefined) {
    const mean = w.sum / finite;
    const std = Math.sqrt(Math.max(0, w.sumSq! / finite - mean * mean));
    const scale = Math.max(v.std, 0.001);
    const grid = [Math.min(v.min, w.min), v.min, ...v.edges, v.max, Math.max(v.max, w.max)];
    stats.wasserstein = binnedWasserstein(grid, ref.slice(1), cur.slice(1)) / scale;
    stats.mean = mean;
    stats.std = std;
    if (v.std > 0) {
      stats.meanShift = (mean - v.mean) / v.std;
      stats.stdRatio = std / v.std;
    }
    stats.outOfRangeRate = (cur[1]! + cur[K + 2]!) / finite;
  }
  return stats;
}

function categoricalStatistics(
  v: CategoricalVariable,
  w: VariableWindow,
  o: StatisticOptions,
): VariableStatistics {
  const ref = v.counts;
  const cur = w.counts;
  const chi2 = chi2Contingency(ref.slice(1), cur.slice(1), { minExpected: 5 });
  const inv = invalidTest(ref, cur);
  const { psi, floor } = psiWithFloor(ref, cur, o);
  const labels = ['invalid', ...v.categories, 'other'];
  const linf = sum(cur) > 0 ? lInfinity(ref, cur) : { value: 0, index: 0 };
  return {
    name: v.name,
    kind: 'categorical',
    n: sum(cur),
    pValue: Math.min(1, 2 * Math.min(chi2.pValue, inv.invalidPValue)),
    psi,
    psiFloor: floor,
    js: sum(cur) > 0 ? jsDistance(ref, cur, 2) : 0,
    hellinger: sum(cur) > 0 ? hellinger(ref, cur) : 0,
    chi2,
    ...inv,
    linf: { value: linf.value, category: labels[linf.index]! },
    reference: { labels, proportions: proportions(ref) },
    current: { proportions: proportions(cur) },
  };
}

/** Every statistic for one variable of a profile against one (merged) window. */
export function variableStatistics(
  v: ProfileVariable,
  w: VariableWindow,
  o: StatisticOptions = {},
): VariableStatistics {
  return v.kind === 'numeric' ? numericStatistics(v, w, o) : categoricalStatistics(v, w, o);
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toPrecision(3);
}

function binLabels(v: NumericVariable): string[] {
  const bounds = [v.min, ...v.edges, v.max];
  return bounds
    .slice(0, -1)
    .map((lo, i) => `[${fmt(lo)}, ${fmt(bounds[i + 1]!)}${i === bounds.length - 2 ? ']' : ')'}`);
}
