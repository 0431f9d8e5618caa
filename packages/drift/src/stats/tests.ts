/** Hypothesis tests on counts: χ² (contingency and goodness of fit), two proportions, Fisher. */
import { DriftError } from '../errors.ts';
import { chi2Sf, lnGamma, normalTwoSided } from './special.ts';

export interface TestResult {
  statistic: number;
  pValue: number;
  df: number;
}

/**
 * Pearson χ² homogeneity test on the 2×K table [ref; cur] (SciPy `chi2_contingency`, NannyML,
 * alibi-detect). Columns empty on both rows are dropped; Yates' correction applies when df = 1
 * unless `yates: false`. With `minExpected`, columns whose expected count falls below it are pooled
 * (the textbook remedy for the χ² approximation failing on sparse cells such as guard bins).
 */
export function chi2Contingency(
  ref: readonly number[],
  cur: readonly number[],
  options: { yates?: boolean; minExpected?: number } = {},
): TestResult {
  if (ref.length !== cur.length)
    throw new DriftError('DRIFT_ARGUMENT_INVALID', 'contingency rows need the same length');
  let cols = ref.map((r, i) => [r, cur[i]!] as [number, number]).filter(([a, b]) => a + b > 0);
  const n1 = cols.reduce((s, c) => s + c[0], 0);
  const n2 = cols.reduce((s, c) => s + c[1], 0);
  const total = n1 + n2;
  if (n1 === 0 || n2 === 0 || cols.length < 2) return { statistic: 0, pValue: 1, df: 0 };
  if (options.minExpected !== undefined) cols = poolSparse(cols, n1, n2, options.minExpected);
  if (cols.length < 2) return { statistic: 0, pValue: 1, df: 0 };
  const df = cols.length - 1;
  const yates = (options.yates ?? true) && df === 1;
  let stat = 0;
  for (const [a, b] of cols) {
    const colTotal = a + b;
    for (const [obs, row] of [
      [a, n1],
      [b, n2],
    ] as const) {
      const exp = (row * colTotal) / total;
      let diff = Math.abs(obs - exp);
      if (yates) diff = Math.max(0, diff - Math.min(0.5, diff));
      stat += (diff * diff) / exp;
    }
  }
  return { statistic: stat, pValue: chi2Sf(stat, df), df };
}

function poolSparse(
  cols: [number, number][],
  n1: number,
  n2: number,
  minExpected: number,
): [number, number][] {
  const total = n1 + n2;
  const minExp = ([a, b]: [number, number]) => (Math.min(n1, n2) * (a + b)) / total;
  const dense = cols.filter((c) => minExp(c) >= minExpected);
  const sparse = cols.filter((c) => minExp(c) < minExpected);
  if (sparse.length === 0) return cols;
  const pool: [number, number] = [sparse.reduce((s, c) => s + c[0], 0), sparse.reduce((s, c) => s + c[1], 0)];
  if (minExp(pool) >= minExpected || dense.length === 0) return [...dense, pool];
  // Still too sparse: fold the pool into the smallest dense column.
  let smallest = 0;
  for (let i = 1; i < dense.length; i++) if (minExp(dense[i]!) < minExp(dense[smallest]!)) smallest = i;
  const target = dense[smallest]!;
  dense[smallest] = [target[0] + pool[0], target[1] + pool[1]];
  return dense;
}

/** Evidently's χ² goodness of fit: expected = ref proportions × current total (reference taken as exact). */
export function chi2GoodnessOfFit(ref: readonly number[], cur: readonly number[]): TestResult {
  if (ref.length !== cur.length) throw new DriftError('DRIFT_ARGUMENT_INVALID', 'GOF needs equal lengths');
  const nRef = ref.reduce((s, x) => s + x, 0);
  const nCur = cur.reduce((s, x) => s + x, 0);
  let stat = 0;
  for (let i = 0; i < ref.length; i++) {
    const exp = (ref[i]! * nCur) / nRef;
    if (exp === 0) {
      if (cur[i]! > 0) return { statistic: Number.POSITIVE_INFINITY, pValue: 0, df: ref.length - 1 };
      continue;
    }
    stat += (cur[i]! - exp) ** 2 / exp;
  }
  return { statistic: stat, pValue: chi2Sf(stat, ref.length - 1), df: ref.length - 1 };
}

/** Pooled two-proportion z-test (Evidently's `z`): successes x out of n in each sample. */
export function twoProportionZ(
  x1: number,
  n1: number,
  x2: number,
  n2: number,
): { z: number; pValue: number } {
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const pooled = (x1 + x2) / (n1 + n2);
  const se = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  if (se === 0) return { z: 0, pValue: 1 };
  const z = (p1 - p2) / se;
  return { z, pValue: normalTwoSided(z) };
}

/**
 * Two-sided Fisher exact test for the 2×2 table [[a, b], [c, d]] (rows = samples): the sum of the
 * hypergeometric probabilities no larger than the observed one. Falls back to the z-test when
 * every expected cell is at least 5 and the support is large, where the two agree.
 */
export function fisherExact(a: number, b: number, c: number, d: number): number {
  const row1 = a + b;
  const col1 = a + c;
  const n = a + b + c + d;
  const lo = Math.max(0, col1 - (n - row1));
  const hi = Math.min(row1, col1);
  if (hi - lo > 20_000) return twoProportionZ(a, row1, c, c + d).pValue;
  const lnChoose = (k: number, r: number) => lnGamma(k + 1) - lnGamma(r + 1) - lnGamma(k - r + 1);
  const lnP = (x: number) => lnChoose(row1, x) + lnChoose(n - row1, col1 - x) - lnChoose(n, col1);
  const observed = lnP(a);
  let p = 0;
  for (let x = lo; x <= hi; x++) {
    const lp = lnP(x);
    if (lp <= observed + 1e-7) p += Math.exp(lp);
  }
  return Math.min(1, p);
}
