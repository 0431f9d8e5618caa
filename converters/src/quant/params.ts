/**
 * Scale and zero point exactly as onnxruntime's `quant_utils.compute_scale_zp` (research §1.5):
 * zero is always representable, float64 math, numpy's round-half-to-even, and the same qmin/qmax
 * tables (symmetric int8 is −127..127, reduce_range int8 is −64..64).
 */
export type QType = 'int8' | 'uint8';

export interface QuantParams {
  scale: number;
  zeroPoint: number;
}

/** numpy.round: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The integer range of a quantized type (`get_qmin_qmax_for_qType`). */
export function qRange(
  type: QType,
  options: { reduceRange?: boolean; symmetric?: boolean } = {},
): [number, number] {
  if (type === 'uint8') {
    if (options.reduceRange) return [0, 127];
    return options.symmetric ? [0, 254] : [0, 255];
  }
  if (options.reduceRange) return [-64, 64];
  return options.symmetric ? [-127, 127] : [-128, 127];
}

const TINY = 1.1754943508222875e-38; // numpy.finfo(float32).tiny

/** Scale and zero point for a real range [rmin, rmax] mapped onto [qmin, qmax]. */
export function computeScaleZp(
  rmin: number,
  rmax: number,
  qmin: number,
  qmax: number,
  symmetric = false,
  minRealRange?: number,
): QuantParams {
  let lo = Math.min(rmin, 0);
  let hi = Math.max(rmax, 0);
  if (minRealRange !== undefined) hi = Math.max(hi, lo + minRealRange);
  if (symmetric) {
    const absmax = Math.max(Math.abs(lo), Math.abs(hi));
    lo = -absmax;
    hi = absmax;
  }
  // ORT computes scale and zero point in float64, then stores the scale as float32.
  const scale = (hi - lo) / (qmax - qmin);
  if (!(scale >= TINY) || !Number.isFinite(scale)) return { scale: 1, zeroPoint: 0 };
  if (symmetric) return { scale: Math.fround(scale), zeroPoint: roundHalfEven((qmin + qmax) / 2) };
  return { scale: Math.fround(scale), zeroPoint: roundHalfEven(qmin - lo / scale) };
}

/** q = clip(round(x / scale) + zp, qmin, qmax), into `out`. */
export function quantizeInto(
  values: ArrayLike<number>,
  p: QuantParams,
  qmin: number,
  qmax: number,
  out: Int8Array | Uint8Array,
  start = 0,
  stride = 1,
  count = values.length,
): void {
  for (let k = 0, i = start; k < count; k++, i += stride) {
    // float32 division, as numpy does on float32 arrays (it decides which way halves fall).
    const q = roundHalfEven(Math.fround((values[i] as number) / p.scale)) + p.zeroPoint;
    out[i] = q < qmin ? qmin : Math.min(q, qmax);
  }
}

/** Per-tensor min/max of a float array (NaN ignored). */
export function minMax(values: ArrayLike<number>): [number, number] {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo > hi ? [0, 0] : [lo, hi];
}

export interface QuantizedWeight {
  data: Int8Array | Uint8Array;
  scales: Float32Array;
  zeroPoints: Int8Array | Uint8Array;
  /** The channel axis, or undefined for per-tensor. */
  axis: number | undefined;
}

/**
 * Quantize a weight tensor symmetrically (zero point 0 for int8) per tensor, or per channel along
 * `axis` (each slice gets its own scale, as onnxruntime's per-channel QDQ weights).
 */
export function quantizeWeight(
  values: Float32Array,
  dims: readonly number[],
  options: { type?: QType; axis?: number; reduceRange?: boolean; symmetric?: boolean } = {},
): QuantizedWeight {
  const type = options.type ?? 'int8';
  const symmetric = options.symmetric ?? type === 'int8';
  const [qmin, qmax] = qRange(type, { reduceRange: options.reduceRange ?? false, symmetric });
  const data = type === 'int8' ? new Int8Array(values.length) : new Uint8Array(values.length);
  if (options.axis === undefined) {
    const [lo, hi] = minMax(values);
    const p = computeScaleZp(lo, hi, qmin, qmax, symmetric);
    quantizeInto(values, p, qmin, qmax, data);
    const zp = type === 'int8' ? Int8Array.of(p.zeroPoint) : Uint8Array.of(p.zeroPoint);
    return { data, scales: Float32Array.of(p.scale), zeroPoints: zp, axis: undefined };
  }
  const axis = options.axis;
  const channels = dims[axis] ?? 1;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const scales = new Float32Array(channels);
  const zeroPoints = type === 'int8' ? new Int8Array(channels) : new Uint8Array(channels);
  for (let c = 0; c < channels; c++) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let o = 0; o < outer; o++)
      for (let i = 0; i < inner; i++) {
        const v = values[(o * channels + c) * inner + i] as number;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    const p = computeScaleZp(lo > hi ? 0 : lo, lo > hi ? 0 : hi, qmin, qmax, symmetric);
    scales[c] = p.scale;
    zeroPoints[c] = p.zeroPoint;
    for (let o = 0; o < outer; o++)
      quantizeInto(values, p, qmin, qmax, data, (o * channels + c) * inner, 1, inner);
  }
  return { data, scales, zeroPoints, axis };
}

/**
 * int32 bias for a quantized Conv/Gemm: scale = input_scale × weight_scale[c], zero point 0.
 * Values beyond int32 are clipped and counted (the caller reports them).
 */
export function quantizeBias(
  bias: Float32Array,
  inputScale: number,
  weightScales: Float32Array,
): { data: Int32Array; scales: Float32Array; clipped: number } {
  const data = new Int32Array(bias.length);
  const scales = new Float32Array(bias.length);
  let clipped = 0;
  for (let c = 0; c < bias.length; c++) {
    const s = Math.fround(
      inputScale * ((weightScales.length === 1 ? weightScales[0] : weightScales[c]) as number),
    );
    scales[c] = s;
    const q = s > 0 ? roundHalfEven(Math.fround((bias[c] as number) / s)) : 0;
    if (q > 2147483647 || q < -2147483648) clipped++;
    data[c] = Math.max(-2147483648, Math.min(2147483647, q));
  }
  return { data, scales, clipped };
}
