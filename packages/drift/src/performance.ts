/**
 * Label-free performance for classifiers (NannyML CBPE, research/drift.md §13.5): with calibrated
 * probabilities, the expected confusion matrix is a sum over predictions, so devices can add it up
 * and the hub can merge it like counts. Also an isotonic calibrator (pool adjacent violators).
 */

export interface ExpectedConfusion {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

/** Add one binary prediction with calibrated positive-class probability p to the sums. */
export function addExpectedConfusion(sums: ExpectedConfusion, p: number, threshold = 0.5): void {
  if (p >= threshold) {
    sums.tp += p;
    sums.fp += 1 - p;
  } else {
    sums.fn += p;
    sums.tn += 1 - p;
  }
}

/** Metrics from expected (or real) confusion sums. */
export function confusionMetrics(c: ExpectedConfusion): {
  accuracy: number;
  precision: number;
  recall: number;
  f1: number;
} {
  const n = c.tp + c.fp + c.fn + c.tn;
  return {
    accuracy: n > 0 ? (c.tp + c.tn) / n : Number.NaN,
    precision: c.tp + c.fp > 0 ? c.tp / (c.tp + c.fp) : Number.NaN,
    recall: c.tp + c.fn > 0 ? c.tp / (c.tp + c.fn) : Number.NaN,
    f1: c.tp + 0.5 * (c.fp + c.fn) > 0 ? c.tp / (c.tp + 0.5 * (c.fp + c.fn)) : Number.NaN,
  };
}

/** CBPE on a list of calibrated positive-class probabilities. */
export function cbpeBinary(
  probabilities: readonly number[],
  threshold = 0.5,
): ExpectedConfusion & ReturnType<typeof confusionMetrics> {
  const sums = { tp: 0, fp: 0, fn: 0, tn: 0 };
  for (const p of probabilities) addExpectedConfusion(sums, p, threshold);
  return { ...sums, ...confusionMetrics(sums) };
}

/** A monotone step function: x ascending thresholds, y the calibrated value from each x on. */
export interface IsotonicCalibrator {
  x: number[];
  y: number[];
}

/** Fit P(correct | score) by isotonic regression (pool adjacent violators). */
export function fitIsotonic(scores: readonly number[], outcomes: readonly number[]): IsotonicCalibrator {
  const pairs = scores
    .map((s, i) => [s, outcomes[i]!] as const)
    .filter(([s, o]) => Number.isFinite(s) && Number.isFinite(o))
    .sort((a, b) => a[0] - b[0]);
  const blocks: { x: number; sum: number; n: number }[] = [];
  for (const [s, o] of pairs) {
    blocks.push({ x: s, sum: o, n: 1 });
    while (blocks.length > 1) {
      const b = blocks[blocks.length - 1]!;
      const a = blocks[blocks.length - 2]!;
      if (a.sum / a.n < b.sum / b.n) break;
      blocks.splice(blocks.length - 2, 2, { x: a.x, sum: a.sum + b.sum, n: a.n + b.n });
    }
  }
  return { x: blocks.map((b) => b.x), y: blocks.map((b) => b.sum / b.n) };
}

/** Apply a calibrator: the value of the last step at or below the score (the first step below it). */
export function calibrate(c: IsotonicCalibrator, score: number): number {
  if (c.x.length === 0) return score;
  let lo = 0;
  let hi = c.x.length - 1;
  if (score < c.x[0]!) return c.y[0]!;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (c.x[mid]! <= score) lo = mid;
    else hi = mid - 1;
  }
  return c.y[lo]!;
}
