/**
 * The float face of a quantized TFLite model: real-valued NCHW inputs are transposed to NHWC and
 * quantized (q = round(x / scale) + zero_point, clamped), integer outputs dequantized
 * (x = scale · (q − zero_point)) and transposed back. This is how the converter verifies a TFLite
 * artifact against its ONNX source, and what the agent does so clients see one model whatever
 * artifact a device runs.
 */
import type { PlainTensor } from '@edgefleet/bundle';
import type { TfliteIo } from './lower/index.ts';

/** Permute a rank-4 tensor's data: NCHW → NHWC (`toNhwc`) or back. */
export function permute4d(data: ArrayLike<number>, shape: readonly number[], toNhwc: boolean): Float32Array {
  const [n, a, b, c] = shape as [number, number, number, number];
  const out = new Float32Array(n * a * b * c);
  // Source [n, a, b, c]; NCHW→NHWC reads (C,H,W) = (a,b,c) and writes [n, b, c, a].
  for (let i = 0; i < n; i++)
    for (let x = 0; x < a; x++)
      for (let y = 0; y < b; y++)
        for (let z = 0; z < c; z++) {
          const src = ((i * a + x) * b + y) * c + z;
          const dst = toNhwc ? ((i * b + y) * c + z) * a + x : ((i * c + z) * a + x) * b + y;
          out[dst] = data[src] as number;
        }
  return out;
}

/** Quantize a float tensor for a TFLite input (rounding half away from zero, as TFLite does). */
export function quantizeInput(t: PlainTensor, io: TfliteIo): PlainTensor {
  const values =
    io.layout === 'NHWC' ? permute4d(t.data as Float32Array, t.shape, true) : (t.data as Float32Array);
  const [lo, hi] = io.dtype === 'uint8' ? [0, 255] : [-128, 127];
  const data = io.dtype === 'uint8' ? new Uint8Array(values.length) : new Int8Array(values.length);
  const { scale, zeroPoint } = io.quantization;
  for (let i = 0; i < values.length; i++) {
    const q =
      Math.round(Math.abs((values[i] as number) / scale)) * Math.sign(values[i] as number) + zeroPoint;
    data[i] = Math.min(hi, Math.max(lo, q));
  }
  return { dtype: io.dtype, shape: [...(io.shape as number[])], data };
}

/** Dequantize a TFLite output back to the ONNX layout. */
export function dequantizeOutput(t: PlainTensor, io: TfliteIo): PlainTensor {
  const { scale, zeroPoint } = io.quantization;
  const real = Float32Array.from(t.data as Int8Array, (q) => scale * (q - zeroPoint));
  if (io.layout !== 'NHWC') return { dtype: 'float32', shape: [...t.shape], data: real };
  const [n, h, w, c] = t.shape as [number, number, number, number];
  return { dtype: 'float32', shape: [n, c, h, w], data: permute4d(real, [n, h, w, c], false) };
}
