/**
 * Agreement between a converted artifact's outputs and the fp32 source's on the same samples:
 * max absolute error, relative RMSE (‖a−r‖ / ‖r‖), cosine similarity, and top-1 agreement for
 * outputs shaped like class scores ([N, C] with C > 1).
 */
import type { PlainTensor } from '@edgefleet/bundle';

export interface OutputMetrics {
  output: string;
  maxAbsError: number;
  relRmse: number;
  cosine: number;
  /** Share of rows whose argmax matches, or null when the output is not [N, C]. */
  top1Agreement: number | null;
  /** Non-finite values in the candidate where the reference is finite. */
  nonFinite: number;
  samples: number;
}

class Accumulator {
  maxAbs = 0;
  diff2 = 0;
  ref2 = 0;
  cand2 = 0;
  dot = 0;
  rows = 0;
  agree = 0;
  nonFinite = 0;
  classLike = true;
  samples = 0;
}

function toNumbers(t: PlainTensor): ArrayLike<number> {
  return t.data instanceof BigInt64Array ? Array.from(t.data, Number) : (t.data as ArrayLike<number>);
}

/** Streamed comparison: add sample pairs, then read `result()`. */
export class OutputComparison {
  private readonly acc = new Map<string, Accumulator>();

  add(reference: Record<string, PlainTensor>, candidate: Record<string, PlainTensor>): void {
    for (const [name, ref] of Object.entries(reference)) {
      const cand = candidate[name];
      const a = this.acc.get(name) ?? new Accumulator();
      this.acc.set(name, a);
      a.samples++;
      const r = toNumbers(ref);
      const c = cand ? toNumbers(cand) : undefined;
      if (!c || c.length !== r.length) {
        a.nonFinite += r.length;
        continue;
      }
      for (let i = 0; i < r.length; i++) {
        const rv = r[i] as number;
        const cv = c[i] as number;
        if (!Number.isFinite(cv)) {
          if (Number.isFinite(rv)) a.nonFinite++;
          continue;
        }
        if (!Number.isFinite(rv)) continue;
        const d = Math.abs(cv - rv);
        if (d > a.maxAbs) a.maxAbs = d;
        a.diff2 += d * d;
        a.ref2 += rv * rv;
        a.cand2 += cv * cv;
        a.dot += rv * cv;
      }
      const classes = ref.shape.length === 2 ? (ref.shape[1] as number) : 0;
      if (classes > 1) {
        for (let row = 0; row * classes < r.length; row++) {
          a.rows++;
          if (argmax(r, row * classes, classes) === argmax(c, row * classes, classes)) a.agree++;
        }
      } else a.classLike = false;
    }
  }

  result(): OutputMetrics[] {
    return [...this.acc.entries()].map(([output, a]) => ({
      output,
      maxAbsError: a.maxAbs,
      relRmse: a.ref2 > 0 ? Math.sqrt(a.diff2 / a.ref2) : Math.sqrt(a.diff2),
      cosine: a.ref2 === 0 && a.cand2 === 0 ? 1 : a.dot / (Math.sqrt(a.ref2 * a.cand2) || 1),
      top1Agreement: a.classLike && a.rows > 0 ? a.agree / a.rows : null,
      nonFinite: a.nonFinite,
      samples: a.samples,
    }));
  }
}

function argmax(values: ArrayLike<number>, start: number, length: number): number {
  let best = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < length; i++) {
    const v = values[start + i] as number;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** Worst case over outputs: the numbers a tolerance gate looks at. */
export function worstOf(metrics: readonly OutputMetrics[]): {
  maxAbsError: number;
  relRmse: number;
  cosine: number;
  top1Agreement: number | null;
  nonFinite: number;
} {
  const top1 = metrics.map((m) => m.top1Agreement).filter((v): v is number => v !== null);
  return {
    maxAbsError: Math.max(0, ...metrics.map((m) => m.maxAbsError)),
    relRmse: Math.max(0, ...metrics.map((m) => m.relRmse)),
    cosine: Math.min(1, ...metrics.map((m) => m.cosine)),
    top1Agreement: top1.length ? Math.min(...top1) : null,
    nonFinite: metrics.reduce((a, m) => a + m.nonFinite, 0),
  };
}
