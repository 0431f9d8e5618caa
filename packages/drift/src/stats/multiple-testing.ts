/** Multiple-testing control across variables (Holm) and across devices (Benjamini–Hochberg). */

/** Holm step-down adjusted p-values (controls the family-wise error rate; beats Bonferroni). */
export function holmAdjust(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => [p, i] as const).sort((x, y) => x[0] - y[0]);
  const out = new Array<number>(m).fill(1);
  let running = 0;
  order.forEach(([p, i], rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p));
    out[i] = running;
  });
  return out;
}

/** Benjamini–Hochberg adjusted p-values (q-values; controls the false discovery rate). */
export function bhAdjust(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => [p, i] as const).sort((x, y) => x[0] - y[0]);
  const out = new Array<number>(m).fill(1);
  let running = 1;
  for (let rank = m - 1; rank >= 0; rank--) {
    const [p, i] = order[rank]!;
    running = Math.min(running, (m * p) / (rank + 1));
    out[i] = Math.min(1, running);
  }
  return out;
}

/**
 * alibi-detect's batch FDR decision: the largest i with p_(i) < q·i/n (strict), its threshold, and
 * whether any such i exists.
 */
export function fdrDecision(pValues: readonly number[], q = 0.05): { drift: boolean; threshold: number } {
  const n = pValues.length;
  const sorted = [...pValues].sort((a, b) => a - b);
  let threshold = 0;
  let drift = false;
  sorted.forEach((p, i) => {
    const qi = (q * (i + 1)) / n;
    // Strict <, and a p on the line within rounding (0.05·3/5 = 0.030000000000000006) is not below it.
    if (p < qi * (1 - 1e-12)) {
      drift = true;
      threshold = qi;
    }
  });
  return { drift, threshold };
}

/** Bonferroni decision (alibi-detect's default): any p below α/n. */
export function bonferroniDecision(
  pValues: readonly number[],
  alpha = 0.05,
): { drift: boolean; threshold: number } {
  const threshold = alpha / Math.max(1, pValues.length);
  return { drift: pValues.some((p) => p < threshold), threshold };
}
