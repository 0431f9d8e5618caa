/**
 * Distances between two binned distributions (counts or proportions over the same bins). One
 * canonical definition each; research/drift.md §7 and the anchors' variants (Evidently's zero
 * fill, Fiddler's +1, JS base e vs base 2, divergence vs distance) are options, not forks.
 */
import { DriftError } from '../errors.ts';

function assertPair(a: readonly number[], b: readonly number[]): void {
  if (a.length !== b.length || a.length === 0)
    throw new DriftError(
      'DRIFT_ARGUMENT_INVALID',
      `distributions need the same non-zero number of bins (${a.length} vs ${b.length})`,
    );
  for (const xs of [a, b])
    for (let i = 0; i < xs.length; i++) {
      const v = xs[i]!;
      if (!(v >= 0) || v === Number.POSITIVE_INFINITY)
        throw new DriftError(
          'DRIFT_ARGUMENT_INVALID',
          `bin values must be finite and non-negative, got ${v}`,
        );
    }
}

/** Counts → proportions (all zero stays all zero). */
export function proportions(counts: readonly number[], pseudoCount = 0): number[] {
  const total = counts.reduce((s, c) => s + c, 0) + pseudoCount * counts.length;
  return counts.map((c) => (total > 0 ? (c + pseudoCount) / total : 0));
}

/** PSI = Σ (q − p)·ln(q/p) on proportions; infinite when one side has an empty bin the other fills. */
export function psi(p: readonly number[], q: readonly number[]): number {
  assertPair(p, q);
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    const a = p[i]!;
    const b = q[i]!;
    if (a === b) continue;
    if (a === 0 || b === 0) return Number.POSITIVE_INFINITY;
    sum += (b - a) * Math.log(b / a);
  }
  return sum;
}

/** PSI on counts with a pseudo-count added to every bin of both sides (0.5 = Jeffreys, 1 = Fiddler). */
export function psiSmoothed(
  refCounts: readonly number[],
  curCounts: readonly number[],
  pseudoCount = 0.5,
): number {
  assertPair(refCounts, curCounts);
  return psi(proportions(refCounts, pseudoCount), proportions(curCounts, pseudoCount));
}

/** Evidently's `feel_zeroes`: a zero proportion becomes 1e-4, or min_nonzero/1e6 when that is ≤ 1e-4. */
export function psiEvidently(refCounts: readonly number[], curCounts: readonly number[]): number {
  assertPair(refCounts, curCounts);
  const fill = (ps: number[]) => {
    const minNonZero = Math.min(...ps.filter((x) => x > 0));
    const eps = minNonZero <= 1e-4 ? minNonZero / 1e6 : 1e-4;
    return ps.map((x) => (x === 0 ? eps : x));
  };
  return psi(fill(proportions(refCounts)), fill(proportions(curCounts)));
}

/** Jensen–Shannon divergence in the given log base (2 → [0, 1]); 0·log 0 = 0. */
export function jsDivergence(p: readonly number[], q: readonly number[], base = 2): number {
  assertPair(p, q);
  const P = proportions(p);
  const Q = proportions(q);
  let sum = 0;
  for (let i = 0; i < P.length; i++) {
    const a = P[i]!;
    const b = Q[i]!;
    const m = (a + b) / 2;
    if (a > 0) sum += 0.5 * a * Math.log(a / m);
    if (b > 0) sum += 0.5 * b * Math.log(b / m);
  }
  return Math.max(0, sum / Math.log(base));
}

/** Jensen–Shannon distance √JSD; base 2 is our canonical display value (NannyML), base e is Evidently's. */
export function jsDistance(p: readonly number[], q: readonly number[], base = 2): number {
  return Math.sqrt(jsDivergence(p, q, base));
}

/** Hellinger distance √(1 − Σ√(p·q)) ∈ [0, 1] (NannyML and whylogs scale). */
export function hellinger(p: readonly number[], q: readonly number[]): number {
  assertPair(p, q);
  const P = proportions(p);
  const Q = proportions(q);
  let bc = 0;
  for (let i = 0; i < P.length; i++) bc += Math.sqrt(P[i]! * Q[i]!);
  return Math.sqrt(Math.max(0, 1 - bc));
}

/** L∞ (Chebyshev): the largest difference in proportion over bins, with the bin where it happens. */
export function lInfinity(p: readonly number[], q: readonly number[]): { value: number; index: number } {
  assertPair(p, q);
  const P = proportions(p);
  const Q = proportions(q);
  let best = { value: 0, index: 0 };
  for (let i = 0; i < P.length; i++) {
    const d = Math.abs(P[i]! - Q[i]!);
    if (d > best.value) best = { value: d, index: i };
  }
  return best;
}

/** Total variation distance ½ Σ |p − q|. */
export function totalVariation(p: readonly number[], q: readonly number[]): number {
  assertPair(p, q);
  const P = proportions(p);
  const Q = proportions(q);
  return 0.5 * P.reduce((s, a, i) => s + Math.abs(a - Q[i]!), 0);
}

/** TFDV's normalized_abs_difference: counts divided by the combined total, then the largest |a − b|. */
export function normalizedAbsDifference(a: readonly number[], b: readonly number[]): number {
  assertPair(a, b);
  const total = [...a, ...b].reduce((s, x) => s + x, 0);
  if (total === 0) return 0;
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!) / total));
}

/** Counts of values over the union of categories, in first-seen order (for raw categorical samples). */
export function categoricalCounts(
  reference: readonly (string | number)[],
  current: readonly (string | number)[],
): { categories: string[]; reference: number[]; current: number[] } {
  const index = new Map<string, number>();
  for (const v of [...reference, ...current]) if (!index.has(String(v))) index.set(String(v), index.size);
  const count = (values: readonly (string | number)[]) => {
    const out = new Array<number>(index.size).fill(0);
    for (const v of values) out[index.get(String(v))!]!++;
    return out;
  };
  return { categories: [...index.keys()], reference: count(reference), current: count(current) };
}

/** NannyML's StandardDeviationThreshold: mean ± k·std (population std) of a metric's reference values. */
export function stdThreshold(
  values: readonly number[],
  lowerMultiplier = 3,
  upperMultiplier = 3,
): { lower: number; upper: number } {
  if (values.length === 0)
    throw new DriftError('DRIFT_ARGUMENT_INVALID', 'no values to set a threshold from');
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  const std = Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / values.length);
  return { lower: mean - lowerMultiplier * std, upper: mean + upperMultiplier * std };
}
