/**
 * Latency histogram buckets shared by every device: upper bounds 0.25 ms · √2^k up to 32.8 s
 * (35 bounds, one overflow bucket). Fixed bounds make histograms mergeable by addition; √2 steps
 * keep a percentile read from them within about 20 %.
 */
export const LATENCY_BOUNDS_MS: readonly number[] = Array.from(
  { length: 35 },
  (_, k) => 0.25 * Math.SQRT2 ** k,
);

/** The bucket of a latency: the first bound ≥ it, or the overflow bucket. */
export function latencyBucket(ms: number): number {
  if (!(ms > LATENCY_BOUNDS_MS[0]!)) return 0;
  let lo = 0;
  let hi = LATENCY_BOUNDS_MS.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (LATENCY_BOUNDS_MS[mid]! >= ms) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** A quantile read from a latency histogram (the bucket's upper bound; geometric midpoint interpolation). */
export function latencyQuantile(counts: readonly number[], q: number): number | undefined {
  const total = counts.reduce((s, c) => s + c, 0);
  if (total === 0) return undefined;
  const target = q * total;
  let run = 0;
  for (let i = 0; i < counts.length; i++) {
    run += counts[i]!;
    if (run >= target && counts[i]! > 0) {
      const hi = LATENCY_BOUNDS_MS[i] ?? LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]! * Math.SQRT2;
      const lo = i === 0 ? 0 : LATENCY_BOUNDS_MS[i - 1]!;
      const within = (target - (run - counts[i]!)) / counts[i]!;
      return lo + (hi - lo) * within;
    }
  }
  return LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1];
}
