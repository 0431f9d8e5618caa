/**
 * Quantization arithmetic against onnxruntime's tables (research §1.5) and the ONNX node test
 * vectors for QuantizeLinear / DynamicQuantizeLinear (the official expected outputs).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import { TensorProtoSchema } from 'onnx-buf';
import { describe, expect, it } from 'vitest';
import { requireService, sharedDir } from '../../test/support/services.ts';
import { f16BitsToF32, f32ToF16Bits, readFloats, readInts } from '../src/onnx/tensor.ts';
import { addToHistogram, emptyHistogram, entropyRange, percentileRange } from '../src/quant/histogram.ts';
import {
  computeScaleZp,
  qRange,
  quantizeBias,
  quantizeInto,
  quantizeWeight,
  roundHalfEven,
} from '../src/quant/params.ts';

const shared = await requireService('shared');

describe('scale and zero point (onnxruntime compute_scale_zp)', () => {
  it('uses the same integer ranges as get_qmin_qmax_for_qType', () => {
    expect(qRange('uint8')).toEqual([0, 255]);
    expect(qRange('uint8', { symmetric: true })).toEqual([0, 254]);
    expect(qRange('uint8', { reduceRange: true })).toEqual([0, 127]);
    expect(qRange('int8')).toEqual([-128, 127]);
    expect(qRange('int8', { symmetric: true })).toEqual([-127, 127]);
    expect(qRange('int8', { reduceRange: true })).toEqual([-64, 64]);
  });

  it('symmetric int8 weights: scale = max|w| / 127, zero point 0', () => {
    const p = computeScaleZp(-1, 0.5, -127, 127, true);
    expect(p.scale).toBeCloseTo(1 / 127, 9);
    expect(p.zeroPoint).toBe(0);
  });

  it('asymmetric uint8: zero point round(qmin − rmin/scale)', () => {
    const p = computeScaleZp(-1, 3, 0, 255);
    expect(p.scale).toBe(Math.fround(4 / 255));
    expect(p.zeroPoint).toBe(64); // 63.75 → 64
  });

  it('always represents zero: an all-positive range starts at 0', () => {
    const p = computeScaleZp(2, 6, 0, 255);
    expect(p.scale).toBeCloseTo(6 / 255, 9);
    expect(p.zeroPoint).toBe(0);
  });

  it('an all-zero tensor gets scale 1 and zero point 0', () => {
    expect(computeScaleZp(0, 0, -128, 127)).toEqual({ scale: 1, zeroPoint: 0 });
  });

  it('symmetric uint8 centres at 127', () => {
    expect(computeScaleZp(-2, 1, 0, 254, true).zeroPoint).toBe(127);
  });

  it('rounds halves to even like numpy', () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6].map((x) => roundHalfEven(x) + 0)).toEqual([
      0, 2, 2, 0, -2, -2, 2, 3,
    ]);
    // A zero point that lands on a half: −128 − (−0.5)/(1/255) = −0.5 → 0.
    expect(computeScaleZp(-0.5, 0.5, -128, 127).zeroPoint + 0).toBe(0);
  });
});

describe('weights and biases', () => {
  it('per channel: each output channel gets its own scale and uses the full symmetric range', () => {
    const w = Float32Array.from([1, -0.5, 0.25, 0.01, -0.02, 0.005]); // two channels of three
    const q = quantizeWeight(w, [2, 3], { axis: 0 });
    expect(Array.from(q.scales)).toEqual([Math.fround(1 / 127), Math.fround(0.02 / 127)]);
    // 0.01 / (0.02/127) is 63.499996 in float32 (numpy agrees): 63, not 64.
    expect(Array.from(q.data)).toEqual([127, -64, 32, 63, -127, 32]);
    expect(Array.from(q.zeroPoints)).toEqual([0, 0]);
  });

  it('reduce_range keeps weights within −64..64', () => {
    const q = quantizeWeight(Float32Array.from([-3, 1, 2.5]), [3], { reduceRange: true });
    expect(Math.min(...q.data)).toBe(-64);
    expect(Math.max(...q.data)).toBeLessThanOrEqual(64);
  });

  it('per channel along axis 1 (Gemm without transB, MatMul [K, N])', () => {
    const w = Float32Array.from([1, 10, -1, -10]); // [[1, 10], [-1, -10]]
    const q = quantizeWeight(w, [2, 2], { axis: 1 });
    expect(Array.from(q.scales)).toEqual([Math.fround(1 / 127), Math.fround(10 / 127)]);
    expect(Array.from(q.data)).toEqual([127, 127, -127, -127]);
  });

  it('int32 bias: scale = input scale × weight scale, zero point 0, overflow clipped and counted', () => {
    const b = quantizeBias(Float32Array.from([0.5, -1, 1e9]), 0.01, Float32Array.from([0.1, 0.2, 1e-9]));
    expect(Array.from(b.scales)).toEqual([Math.fround(0.001), Math.fround(0.002), Math.fround(1e-11)]);
    expect(Array.from(b.data)).toEqual([500, -500, 2147483647]);
    expect(b.clipped).toBe(1);
  });
});

describe('calibration histograms', () => {
  const values = Float32Array.from({ length: 10_000 }, (_, i) => Math.sin(i) * (i === 5000 ? 100 : 1));

  it('percentile cuts the rare outlier that MinMax would keep', () => {
    const h = emptyHistogram(2048, 0, 100, -1, 100);
    addToHistogram(h, values, true);
    const [lo, hi] = percentileRange(h, 99.9);
    expect(hi).toBeGreaterThan(0.9);
    expect(hi).toBeLessThan(1.1);
    expect(lo).toBe(-hi); // symmetric threshold, inside the observed minimum of −1
  });

  it('entropy picks a window around the bulk of the distribution', () => {
    const h = emptyHistogram(2048, -100, 100, -1, 100);
    addToHistogram(h, values, false);
    const [lo, hi] = entropyRange(h);
    // 128 quantized bins of width 200/2048 make ±6.25 the narrowest window it can choose.
    expect(hi).toBeLessThan(20);
    expect(lo).toBe(-1); // clamped to the observed minimum
  });
});

describe('fp16 conversion', () => {
  it('converts like numpy astype(float16): exact values, ties to even, overflow to infinity', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [65504, 0x7bff],
      [65520, 0x7c00],
      [1 + 2 ** -11, 0x3c00], // tie → even
      [1 + 3 * 2 ** -11, 0x3c02], // tie → even (up)
      [2 ** -24, 0x0001], // smallest subnormal
      [0, 0],
    ];
    for (const [value, bits] of cases) expect(f32ToF16Bits(value)).toBe(bits);
    for (const v of [0.5, -3.25, 1024, 2 ** -14, 6.103515625e-5])
      expect(f16BitsToF32(f32ToF16Bits(v))).toBe(v);
  });
});

async function tensorFile(path: string) {
  return fromBinary(TensorProtoSchema, new Uint8Array(await readFile(path)));
}

describe.skipIf(!shared.available)('Q/DQ semantics against the ONNX node test vectors', () => {
  const node = () => join(sharedDir(), 'conformance/onnx-backend/node');

  it('test_quantizelinear: same uint8 outputs', async () => {
    const dir = join(node(), 'test_quantizelinear/test_data_set_0');
    const x = readFloats(await tensorFile(join(dir, 'input_0.pb')));
    const scale = readFloats(await tensorFile(join(dir, 'input_1.pb')))[0] as number;
    const zp = readInts(await tensorFile(join(dir, 'input_2.pb')))[0] as number;
    const expected = readInts(await tensorFile(join(dir, 'output_0.pb')));
    const out = new Uint8Array(x.length);
    quantizeInto(x, { scale, zeroPoint: zp }, 0, 255, out);
    expect(Array.from(out)).toEqual(expected);
  });

  it('test_quantizelinear_axis: per-channel quantization matches', async () => {
    const dir = join(node(), 'test_quantizelinear_axis/test_data_set_0');
    const xT = await tensorFile(join(dir, 'input_0.pb'));
    const x = readFloats(xT);
    const scales = readFloats(await tensorFile(join(dir, 'input_1.pb')));
    const zps = readInts(await tensorFile(join(dir, 'input_2.pb')));
    const expected = readInts(await tensorFile(join(dir, 'output_0.pb')));
    const dims = xT.dims.map(Number);
    const channels = dims[1] as number;
    const inner = dims.slice(2).reduce((a, b) => a * b, 1);
    const out = new Uint8Array(x.length);
    for (let n = 0; n < (dims[0] as number); n++)
      for (let c = 0; c < channels; c++)
        quantizeInto(
          x,
          { scale: scales[c] as number, zeroPoint: zps[c] as number },
          0,
          255,
          out,
          (n * channels + c) * inner,
          1,
          inner,
        );
    expect(Array.from(out)).toEqual(expected);
  });

  it('test_dynamicquantizelinear*: scale, zero point and values match', async () => {
    for (const t of [
      'test_dynamicquantizelinear',
      'test_dynamicquantizelinear_max_adjusted',
      'test_dynamicquantizelinear_min_adjusted',
    ]) {
      const dir = join(node(), t, 'test_data_set_0');
      const x = readFloats(await tensorFile(join(dir, 'input_0.pb')));
      const y = readInts(await tensorFile(join(dir, 'output_0.pb')));
      const scale = readFloats(await tensorFile(join(dir, 'output_1.pb')))[0] as number;
      const zp = readInts(await tensorFile(join(dir, 'output_2.pb')))[0] as number;
      const lo = Math.min(...x);
      const hi = Math.max(...x);
      const p = computeScaleZp(lo, hi, 0, 255);
      expect(p.scale, t).toBeCloseTo(scale, 7);
      expect(p.zeroPoint, t).toBe(zp);
      const out = new Uint8Array(x.length);
      quantizeInto(x, p, 0, 255, out);
      expect(Array.from(out), t).toEqual(y);
    }
  });
});
