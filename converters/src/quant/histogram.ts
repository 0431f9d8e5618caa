/**
 * Histogram-based calibration thresholds, ported from onnxruntime's `calibrate.py`:
 * Percentile (cdf cut on |x|) and Entropy (TensorRT-style KL minimisation on a symmetric histogram).
 */

export interface Histogram {
  /** Counts per bin. */
  counts: Float64Array;
  /** Bin edges (counts.length + 1). */
  edges: Float64Array;
  min: number;
  max: number;
}

/** Empty histogram of `bins` equal bins over [lo, hi]. */
export function emptyHistogram(bins: number, lo: number, hi: number, min: number, max: number): Histogram {
  const edges = new Float64Array(bins + 1);
  const width = (hi - lo) / bins;
  for (let i = 0; i <= bins; i++) edges[i] = lo + i * width;
  return { counts: new Float64Array(bins), edges, min, max };
}

/** Add values (or their absolute values) to a histogram; values outside the range go to the end bins. */
export function addToHistogram(h: Histogram, values: ArrayLike<number>, absolute: boolean): void {
  const bins = h.counts.length;
  const lo = h.edges[0] as number;
  const hi = h.edges[bins] as number;
  const width = (hi - lo) / bins;
  if (!(width > 0)) {
    h.counts[0] = (h.counts[0] as number) + values.length;
    return;
  }
  for (let i = 0; i < values.length; i++) {
    let v = values[i] as number;
    if (Number.isNaN(v)) continue;
    if (absolute) v = Math.abs(v);
    let b = Math.floor((v - lo) / width);
    if (b < 0) b = 0;
    if (b >= bins) b = bins - 1;
    h.counts[b] = (h.counts[b] as number) + 1;
  }
}

/** First index where cdf[i] >= v (numpy.searchsorted, side left). */
function searchSorted(cdf: Float64Array, v: number): number {
  let lo = 0;
  let hi = cdf.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((cdf[mid] as number) < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const clampRange = (h: Histogram, lo: number, hi: number): [number, number] => [
  Math.max(lo, h.min),
  Math.min(hi, h.max),
];

/** Percentile threshold on a histogram of |x| over [0, max|x|] (`compute_percentile`, symmetric). */
export function percentileRange(h: Histogram, percentile: number): [number, number] {
  const total = h.counts.reduce((a, b) => a + b, 0);
  if (total === 0) return [h.min, h.max];
  const cdf = new Float64Array(h.counts.length);
  let acc = 0;
  for (let i = 0; i < cdf.length; i++) {
    acc += (h.counts[i] as number) / total;
    cdf[i] = acc;
  }
  const t = h.edges[Math.min(searchSorted(cdf, percentile / 100), h.edges.length - 1)] as number;
  return clampRange(h, -t, t);
}

function smooth(p: Float64Array, eps = 0.0001): Float64Array | undefined {
  let zeros = 0;
  for (const v of p) if (v === 0) zeros++;
  const nonzeros = p.length - zeros;
  if (nonzeros === 0) return undefined;
  const eps1 = (eps * zeros) / nonzeros;
  if (eps1 >= 1) return undefined;
  return p.map((v) => (v === 0 ? eps : v - eps1));
}

function klDivergence(p: Float64Array, q: Float64Array): number {
  let sp = 0;
  let sq = 0;
  for (let i = 0; i < p.length; i++) {
    sp += p[i] as number;
    sq += q[i] as number;
  }
  let kl = 0;
  for (let i = 0; i < p.length; i++) {
    const pi = (p[i] as number) / sp;
    const qi = (q[i] as number) / sq;
    if (pi > 0) kl += pi * Math.log(pi / qi);
  }
  return kl;
}

/**
 * Entropy (KL) threshold on a symmetric histogram over [−T, T] (`get_entropy_threshold`): for each
 * window around zero, fold outliers into the end bins, re-bin into `quantizedBins`, and keep the
 * window with the smallest KL(p‖q).
 */
export function entropyRange(h: Histogram, quantizedBins = 128): [number, number] {
  const hist = h.counts;
  const bins = hist.length;
  const zero = Math.floor(bins / 2);
  const half = Math.floor(quantizedBins / 2);
  let best = Number.POSITIVE_INFINITY;
  let range: [number, number] = [h.edges[0] as number, h.edges[bins] as number];
  for (let i = half; i <= zero; i++) {
    const start = zero - i;
    const end = Math.min(zero + i + 1, bins);
    const sliced = hist.slice(start, end);
    const p = sliced.slice();
    let left = 0;
    let right = 0;
    for (let k = 0; k < start; k++) left += hist[k] as number;
    for (let k = end; k < bins; k++) right += hist[k] as number;
    p[0] = (p[0] as number) + left;
    p[p.length - 1] = (p[p.length - 1] as number) + right;
    const merged = Math.floor(sliced.length / quantizedBins);
    const quantized = new Float64Array(quantizedBins);
    for (let b = 0; b < quantizedBins; b++)
      for (let k = b * merged; k < (b + 1) * merged; k++)
        quantized[b] = (quantized[b] as number) + (sliced[k] as number);
    for (let k = quantizedBins * merged; k < sliced.length; k++)
      quantized[quantizedBins - 1] = (quantized[quantizedBins - 1] as number) + (sliced[k] as number);
    const q = new Float64Array(p.length);
    for (let b = 0; b < quantizedBins; b++) {
      let norm = 0;
      for (let k = b * merged; k < (b + 1) * merged; k++) if ((p[k] as number) !== 0) norm++;
      // ORT writes into an int64 array: the share per bin is truncated.
      if (norm !== 0)
        for (let k = b * merged; k < (b + 1) * merged; k++)
          q[k] = Math.trunc((quantized[b] as number) / norm);
    }
    const ps = smooth(p);
    const qs = smooth(q);
    const kl = ps && qs ? klDivergence(ps, qs) : Number.POSITIVE_INFINITY;
    if (kl < best) {
      best = kl;
      range = [h.edges[start] as number, h.edges[end] as number];
    }
  }
  return clampRange(h, range[0], range[1]);
}
