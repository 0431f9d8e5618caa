/**
 * KS and Wasserstein-1 from counts in shared bins. The grid is the bin boundaries: for a numeric
 * variable [low, refMin, edges…, refMax, high], where low/high come from the observed min/max so the
 * guard bins have a width. Within a bin mass is taken as uniform (linear CDF), as TFDV rebuckets.
 */
import { DriftError } from '../errors.ts';
import { ksPValue } from './ks.ts';

function cdf(counts: readonly number[]): number[] {
  const total = counts.reduce((s, c) => s + c, 0);
  const out = [0];
  let run = 0;
  for (const c of counts) {
    run += c;
    out.push(total > 0 ? run / total : 0);
  }
  return out;
}

/** Binned KS: D = max |F_ref − F_cur| at the bin boundaries, p from Stephens' form (conservative). */
export function binnedKs(
  refCounts: readonly number[],
  curCounts: readonly number[],
): { d: number; pValue: number; n: number; m: number } {
  if (refCounts.length !== curCounts.length)
    throw new DriftError('DRIFT_ARGUMENT_INVALID', 'binned KS needs the same bins on both sides');
  const a = cdf(refCounts);
  const b = cdf(curCounts);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  const n = refCounts.reduce((s, c) => s + c, 0);
  const m = curCounts.reduce((s, c) => s + c, 0);
  return { d, pValue: n > 0 && m > 0 ? ksPValue(d, n, m) : 1, n, m };
}

/** W1 = ∫ |F_ref − F_cur| dx over the grid (length = counts + 1), CDFs linear inside each bin. */
export function binnedWasserstein(
  grid: readonly number[],
  refCounts: readonly number[],
  curCounts: readonly number[],
): number {
  if (grid.length !== refCounts.length + 1 || refCounts.length !== curCounts.length)
    throw new DriftError('DRIFT_ARGUMENT_INVALID', 'binned Wasserstein needs counts.length + 1 grid points');
  const a = cdf(refCounts);
  const b = cdf(curCounts);
  let w = 0;
  for (let i = 0; i + 1 < grid.length; i++) {
    const width = grid[i + 1]! - grid[i]!;
    if (!(width > 0)) continue;
    const d0 = a[i]! - b[i]!;
    const d1 = a[i + 1]! - b[i + 1]!;
    if (d0 * d1 >= 0) w += (width * (Math.abs(d0) + Math.abs(d1))) / 2;
    else w += (width * (d0 * d0 + d1 * d1)) / (2 * (Math.abs(d0) + Math.abs(d1)));
  }
  return w;
}
