/**
 * The on-device smoke test: sample inputs plus, per artifact, the outputs the converter saw for
 * them. The agent runs the staged artifact on the inputs before switching to it.
 */
import { z } from 'zod';
import { fromBase64, toBase64 } from './digest.ts';
import { BundleError } from './errors.ts';
import { dtype } from './manifest.ts';

/** A tensor in JSON: little-endian bytes as base64. */
export const encodedTensor = z.object({
  dtype,
  shape: z.array(z.number().int().nonnegative()).max(8),
  data: z.string(),
});
export type EncodedTensor = z.infer<typeof encodedTensor>;

export const smokeTestFile = z.object({
  inputs: z.record(z.string(), encodedTensor),
  expected: z.record(
    z.string(),
    z.object({
      outputs: z.record(z.string(), encodedTensor),
      tolerance: z.object({
        maxAbs: z.number().nonnegative(),
        minCosine: z.number().min(-1).max(1).optional(),
      }),
    }),
  ),
});
export type SmokeTestFile = z.infer<typeof smokeTestFile>;

export type NumericArray =
  | Float32Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint16Array;
export interface PlainTensor {
  dtype: z.infer<typeof dtype>;
  shape: number[];
  data: NumericArray;
}

export function encodeTensor(t: PlainTensor): EncodedTensor {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { dtype: t.dtype, shape: t.shape, data: toBase64(bytes) };
}

export function decodeTensor(t: EncodedTensor): PlainTensor {
  const raw = fromBase64(t.data);
  const buf = new Uint8Array(raw).buffer; // a fresh, aligned copy
  const count = t.shape.reduce((a, b) => a * b, 1);
  const data = typedArrayFor(t.dtype, buf);
  if (data.length !== count) {
    throw new BundleError(
      'BUNDLE_MALFORMED',
      `smoke-test tensor has ${data.length} elements, its shape needs ${count}`,
    );
  }
  return { dtype: t.dtype, shape: t.shape, data };
}

function typedArrayFor(kind: PlainTensor['dtype'], buf: ArrayBuffer): NumericArray {
  const need = (size: number) => {
    if (buf.byteLength % size !== 0)
      throw new BundleError('BUNDLE_MALFORMED', `smoke-test ${kind} data has a partial element`);
  };
  switch (kind) {
    case 'float32':
      need(4);
      return new Float32Array(buf);
    case 'float16':
      need(2);
      return new Uint16Array(buf);
    case 'int8':
      return new Int8Array(buf);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buf);
    case 'int16':
      need(2);
      return new Int16Array(buf);
    case 'int32':
      need(4);
      return new Int32Array(buf);
    case 'int64':
      need(8);
      return new BigInt64Array(buf);
    default:
      throw new BundleError('BUNDLE_MALFORMED', `smoke-test tensors cannot be of type ${kind}`);
  }
}

export interface Agreement {
  ok: boolean;
  maxAbs: number;
  cosine: number;
}

/** Compare outputs element-wise: max absolute difference and cosine similarity. */
export function compareTensors(
  expected: ArrayLike<number>,
  actual: ArrayLike<number>,
  tolerance: { maxAbs: number; minCosine?: number | undefined },
): Agreement {
  if (expected.length !== actual.length) return { ok: false, maxAbs: Number.POSITIVE_INFINITY, cosine: 0 };
  let maxAbs = 0;
  let dot = 0;
  let ne = 0;
  let na = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Number(expected[i]);
    const a = Number(actual[i]);
    if (Number.isNaN(a) !== Number.isNaN(e))
      return { ok: false, maxAbs: Number.POSITIVE_INFINITY, cosine: 0 };
    // NaN where NaN is expected (and the same infinity) agree; they carry no magnitude to compare.
    if (Number.isNaN(a) || (!Number.isFinite(e) && e === a)) continue;
    if (!Number.isFinite(a) || !Number.isFinite(e))
      return { ok: false, maxAbs: Number.POSITIVE_INFINITY, cosine: 0 };
    maxAbs = Math.max(maxAbs, Math.abs(e - a));
    dot += e * a;
    ne += e * e;
    na += a * a;
  }
  const cosine = ne === 0 && na === 0 ? 1 : dot / (Math.sqrt(ne) * Math.sqrt(na) || 1);
  const ok =
    maxAbs <= tolerance.maxAbs && (tolerance.minCosine === undefined || cosine >= tolerance.minCosine);
  return { ok, maxAbs, cosine };
}
