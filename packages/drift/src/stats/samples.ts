/**
 * Tests on raw samples, for small data where the hub has the values (delayed labels, reference
 * chunks) and as the exact baseline the binned forms are checked against.
 */
import { DriftError } from '../errors.ts';
import { ksTwoSampleExactP, kstwoSf } from './ks.ts';
import { studentTTwoSided } from './special.ts';

function finiteSorted(values: readonly number[], what: string): number[] {
  const out = values.filter((v) => Number.isFinite(v)).sort((x, y) => x - y);
  if (out.length === 0) throw new DriftError('DRIFT_ARGUMENT_INVALID', `${what} has no finite values`);
  return out;
}

/**
 * Two-sample KS on raw values: D, the exact p (lattice paths, when n·m ≤ 1e6) and SciPy's
 * `asymp` p = kstwo.sf(D, round(n·m/(n+m))).
 */
export function ksTwoSample(
  reference: readonly number[],
  current: readonly number[],
): { d: number; pExact: number | undefined; pAsymp: number } {
  const a = finiteSorted(reference, 'reference');
  const b = finiteSorted(current, 'current');
  let i = 0;
  let j = 0;
  let d = 0;
  while (i < a.length && j < b.length) {
    const x = Math.min(a[i]!, b[j]!);
    while (i < a.length && a[i]! <= x) i++;
    while (j < b.length && b[j]! <= x) j++;
    d = Math.max(d, Math.abs(i / a.length - j / b.length));
  }
  const n = a.length;
  const m = b.length;
  return {
    d,
    pExact: n * m <= 1e6 ? ksTwoSampleExactP(d, n, m) : undefined,
    pAsymp: kstwoSf(d, Math.round((n * m) / (n + m))),
  };
}

/** Exact Wasserstein-1 between two empirical distributions (SciPy `wasserstein_distance`). */
export function wassersteinSamples(reference: readonly number[], current: readonly number[]): number {
  const a = finiteSorted(reference, 'reference');
  const b = finiteSorted(current, 'current');
  const all = [...a, ...b].sort((x, y) => x - y);
  let i = 0;
  let j = 0;
  let w = 0;
  for (let k = 0; k + 1 < all.length; k++) {
    const x = all[k]!;
    while (i < a.length && a[i]! <= x) i++;
    while (j < b.length && b[j]! <= x) j++;
    w += Math.abs(i / a.length - j / b.length) * (all[k + 1]! - x);
  }
  return w;
}

/** Population standard deviation (ddof 0, NumPy's default and Evidently's W1 normaliser). */
export function populationStd(values: readonly number[]): number {
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  return Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
}

/** Student's two-sample t-test with pooled variance (SciPy `ttest_ind`, Evidently `t_test`). */
export function tTest(
  reference: readonly number[],
  current: readonly number[],
): { t: number; pValue: number; df: number } {
  const a = finiteSorted(reference, 'reference');
  const b = finiteSorted(current, 'current');
  const mean = (xs: number[]) => xs.reduce((s, v) => s + v, 0) / xs.length;
  const ma = mean(a);
  const mb = mean(b);
  const ss = (xs: number[], m: number) => xs.reduce((s, v) => s + (v - m) ** 2, 0);
  const df = a.length + b.length - 2;
  const pooled = (ss(a, ma) + ss(b, mb)) / df;
  const t = (ma - mb) / Math.sqrt(pooled * (1 / a.length + 1 / b.length));
  return { t, pValue: studentTTwoSided(t, df), df };
}
