import type { TensorSpec } from '@edgefleet/bundle';
import { describe, expect, it } from 'vitest';
import { pixelsToTensor, topK } from '../src/image.ts';
import { fromHalf, normalizeInputs, syntheticInputs, toHalf } from '../src/tensors.ts';

const image: TensorSpec = { name: 'image', shape: ['batch', 3, 2, 2], dtype: 'float32' };
const mask: TensorSpec = { name: 'mask', shape: [1, 4], dtype: 'int64' };

describe('predict inputs', () => {
  it('takes a plain array for a single-input model and infers the dynamic batch', () => {
    const out = normalizeInputs(
      Array.from({ length: 24 }, (_, i) => i),
      [image],
    );
    expect(out.image?.shape).toEqual([2, 3, 2, 2]);
    expect(out.image?.data).toBeInstanceOf(Float32Array);
    expect(out.image?.data[23]).toBe(23);
  });

  it('takes {data, shape} and checks the shape against the model', () => {
    const data = new Float32Array(12);
    expect(normalizeInputs({ data, shape: [1, 3, 2, 2] }, [image]).image?.shape).toEqual([1, 3, 2, 2]);
    expect(() => normalizeInputs({ data, shape: [1, 4, 3, 1] }, [image])).toThrow(/does not fit/);
    expect(() => normalizeInputs({ data, shape: [2, 3, 2, 2] }, [image])).toThrow(/needs 24 values, got 12/);
  });

  it('names the input when the element count cannot fill its shape', () => {
    expect(() => normalizeInputs(new Float32Array(13), [image])).toThrow(
      expect.objectContaining({ code: 'WEB_INPUT_INVALID', details: { field: 'image' } }),
    );
  });

  it('needs a record for several inputs, with every input and no strangers', () => {
    const x = new Float32Array(12);
    expect(() => normalizeInputs(x, [image, mask])).toThrow(/2 inputs/);
    expect(() => normalizeInputs({ image: x }, [image, mask])).toThrow(/input "mask": missing/);
    expect(() => normalizeInputs({ image: x, mask: [1, 0, 1, 1], extra: [1] }, [image, mask])).toThrow(
      /unknown input\(s\) extra/,
    );
    const both = normalizeInputs({ image: x, mask: [1, 0, 1, 1] }, [image, mask]);
    expect(both.mask?.data).toEqual(new BigInt64Array([1n, 0n, 1n, 1n]));
  });

  it('quantizes float input for an int8 tensor with quantization parameters', () => {
    const q: TensorSpec = {
      name: 'q',
      shape: [4],
      dtype: 'int8',
      quantization: { scale: 0.5, zeroPoint: -1 },
    };
    // q = real/scale + zeroPoint, clamped to int8
    expect(
      Array.from((normalizeInputs(new Float32Array([0, 1, -1, 1000]), [q]).q?.data ?? []) as Int8Array),
    ).toEqual([-1, 1, -3, 127]);
  });

  it('converts to fp16 bits for a float16 input', () => {
    const h: TensorSpec = { name: 'h', shape: [3], dtype: 'float16' };
    expect(Array.from((normalizeInputs([1, -2, 0.5], [h]).h?.data ?? []) as Uint16Array)).toEqual([
      0x3c00, 0xc000, 0x3800,
    ]);
  });

  it('makes zero probes with dynamic dimensions set to 1', () => {
    const probe = syntheticInputs([image, mask]);
    expect(probe?.image?.shape).toEqual([1, 3, 2, 2]);
    expect(probe?.mask?.data).toBeInstanceOf(BigInt64Array);
    expect(syntheticInputs([{ name: 's', shape: [1], dtype: 'string' }])).toBeUndefined();
  });
});

describe('half precision', () => {
  it('round-trips the values fp16 can hold and rounds the rest to nearest even', () => {
    for (const v of [0, 1, -1, 0.5, 65504, -65504, 6.103515625e-5, 2 ** -24, 1024.5])
      expect(fromHalf(toHalf(v))).toBe(v === 1024.5 ? 1024 : v);
    expect(toHalf(70000)).toBe(0x7c00); // overflow to infinity
    expect(Number.isNaN(fromHalf(toHalf(Number.NaN)))).toBe(true);
    expect(fromHalf(toHalf(1 + 2 ** -11))).toBe(1); // tie rounds to even
    expect(fromHalf(toHalf(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9);
  });
});

describe('image preprocessing', () => {
  // 2x1 image: a red pixel, then a (10, 20, 30) pixel; alpha ignored.
  const rgba = [255, 0, 0, 255, 10, 20, 30, 0];
  const base = { kind: 'image', width: 2, height: 1, mean: [0, 0, 0], std: [1, 1, 1] } as const;

  it('lays out RGB as NCHW scaled to 0..1, the way the agent does', () => {
    const t = pixelsToTensor(rgba, { ...base, layout: 'NCHW', channels: 'RGB', pixelRange: '0-1' });
    expect(t.shape).toEqual([1, 3, 1, 2]);
    expect(Array.from(t.data)).toEqual([1, 10 / 255, 0, 20 / 255, 0, 30 / 255].map(Math.fround));
  });

  it('applies BGR order, NHWC layout, 0..255 range and per-channel mean/std', () => {
    const t = pixelsToTensor(rgba, {
      ...base,
      layout: 'NHWC',
      channels: 'BGR',
      pixelRange: '0-255',
      mean: [10, 20, 30],
      std: [2, 4, 5],
    });
    expect(t.shape).toEqual([1, 1, 2, 3]);
    expect(Array.from(t.data)).toEqual([-5, -5, 45, 10, 0, -4]);
  });

  it('turns colour into one luminance channel for GRAY models', () => {
    const t = pixelsToTensor(rgba, { ...base, layout: 'NCHW', channels: 'GRAY', pixelRange: '0-255' });
    expect(t.shape).toEqual([1, 1, 1, 2]);
    expect(Array.from(t.data)).toEqual([54, 19]);
  });

  it('refuses pixels of the wrong size', () => {
    expect(() =>
      pixelsToTensor([1, 2, 3, 4], { ...base, layout: 'NCHW', channels: 'RGB', pixelRange: '0-1' }),
    ).toThrow(expect.objectContaining({ code: 'WEB_INPUT_INVALID' }));
  });

  it('ranks classifier scores with their labels', () => {
    expect(topK([0.1, 0.7, 0.2], ['cat', 'dog', 'owl'], 2)).toEqual([
      { index: 1, label: 'dog', score: 0.7 },
      { index: 2, label: 'owl', score: 0.2 },
    ]);
  });
});
