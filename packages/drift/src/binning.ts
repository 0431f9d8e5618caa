/**
 * Equal-mass bins from reference values, and the one bin-assignment function that both the profile
 * builder and the device use (so reference counts are reproduced exactly: research §16).
 *
 * Layout of a numeric variable's counts: [invalid, below-min, bin 1 … bin K, above-max].
 * Bins are left-closed: bin 1 = [min, e1), bin j = [e(j−1), ej), bin K = [e(K−1), max].
 */

/** Index 0 of every counts array: NaN, ±Infinity or a missing value. */
export const INVALID = 0;

/** Interior edges at the reference's k/B quantiles (lower), deduplicated and strictly above min. */
export function equalMassEdges(sorted: Float64Array | readonly number[], bins: number): number[] {
  const n = sorted.length;
  if (n === 0) return [];
  const min = sorted[0]!;
  const edges: number[] = [];
  for (let k = 1; k < bins; k++) {
    const e = sorted[Math.min(n - 1, Math.floor((k * n) / bins))]!;
    // Ties collapse edges (e.g. a 0/1 feature): keep the real boundaries only.
    if (e > min && (edges.length === 0 || e > edges[edges.length - 1]!)) edges.push(e);
  }
  return edges;
}

/** The counts index of a value: 0 invalid, 1 below min, 2 … K+1 the bins, K+2 above max. */
export function binIndex(edges: readonly number[], min: number, max: number, x: number): number {
  if (!Number.isFinite(x)) return INVALID;
  if (x < min) return 1;
  if (x > max) return edges.length + 3;
  // Number of edges ≤ x (upper bound): bins are left-closed.
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (edges[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return 2 + lo;
}

/** Linear-interpolation quantile of sorted values (NumPy's default). */
export function quantileSorted(sorted: Float64Array | readonly number[], q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
