/**
 * The tensors drift statistics read: structurally compatible with @edgefleet/bundle's PlainTensor
 * (and onnxruntime's Tensor), without depending on either.
 */

export interface TensorLike {
  dtype?: string;
  shape: readonly number[];
  data: ArrayLike<number | bigint>;
}

/** Per-tensor spec as in a bundle manifest: a symbolic (string) dimension is dynamic. */
export interface TensorSpecLike {
  name: string;
  shape: readonly (number | string)[];
  dtype: string;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** Element i as a JS number (float16 bits decoded, int64 converted). */
export function readNumber(t: TensorLike, i: number): number {
  const v = t.data[i];
  if (v === undefined) return Number.NaN;
  if (typeof v === 'bigint') return Number(v);
  return t.dtype === 'float16' ? halfToFloat(v) : v;
}

/** How many samples a tensor holds, given the elements of one sample; undefined when it does not divide. */
export function samplesIn(t: TensorLike, perSample: number): number | undefined {
  const total = t.data.length;
  if (perSample <= 0 || total % perSample !== 0) return undefined;
  return total / perSample;
}
