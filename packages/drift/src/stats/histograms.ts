/**
 * Histograms with their own bucket boundaries (TFDV-style): rebucket both onto the union of
 * boundaries assuming uniform mass within a bucket; point buckets (low = high) and NaN stay buckets
 * of their own. Used where two profiles were not built on shared bins (e.g. comparing versions).
 */
import { DriftError } from '../errors.ts';
import { jsDivergence } from './distances.ts';

export interface Histogram {
  buckets: { low: number; high: number; count: number }[];
  nanCount?: number;
}

/** Both histograms as aligned mass vectors over the union of their buckets. */
export function rebucket(a: Histogram, b: Histogram): { labels: string[]; a: number[]; b: number[] } {
  for (const h of [a, b]) {
    const total = h.buckets.reduce((s, x) => s + x.count, 0) + (h.nanCount ?? 0);
    if (!(total > 0)) throw new DriftError('DRIFT_ARGUMENT_INVALID', 'a histogram has no mass');
  }
  const bounds = new Set<number>();
  const points = new Set<number>();
  for (const h of [a, b])
    for (const x of h.buckets) {
      if (x.high < x.low)
        throw new DriftError('DRIFT_ARGUMENT_INVALID', `bucket [${x.low}, ${x.high}] is reversed`);
      if (x.low === x.high) points.add(x.low);
      else bounds.add(x.low).add(x.high);
    }
  const edges = [...bounds].sort((x, y) => x - y);
  const pointList = [...points].sort((x, y) => x - y);
  const labels = [
    'NaN',
    ...edges.slice(0, -1).map((e, i) => `[${e}, ${edges[i + 1]})`),
    ...pointList.map((p) => `{${p}}`),
  ];
  const spread = (h: Histogram) => {
    const out = new Array<number>(labels.length).fill(0);
    out[0] = h.nanCount ?? 0;
    for (const x of h.buckets) {
      if (x.low === x.high) {
        out[1 + edges.length - 1 + pointList.indexOf(x.low)]! += x.count;
        continue;
      }
      for (let i = 0; i + 1 < edges.length; i++) {
        const lo = Math.max(x.low, edges[i]!);
        const hi = Math.min(x.high, edges[i + 1]!);
        if (hi > lo) out[1 + i]! += (x.count * (hi - lo)) / (x.high - x.low);
      }
    }
    return out;
  };
  return { labels, a: spread(a), b: spread(b) };
}

/** TFDV's Jensen–Shannon divergence (base 2, no square root) between two rebucketed histograms. */
export function histogramJsDivergence(a: Histogram, b: Histogram): number {
  const r = rebucket(a, b);
  return Math.min(1, jsDivergence(r.a, r.b, 2));
}
