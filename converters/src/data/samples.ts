/**
 * Sample sets for calibration, verification and drift references: one record of input tensors per
 * sample (batch 1). Also the synthetic fallback used when the user gives no data, which every
 * report marks loudly, because int8 ranges from random data can be far from the real ones.
 */
import type { ImagePreprocessing, PlainTensor, TensorSpec } from '@edgefleet/bundle';
import { ConverterError } from '../errors.ts';
import { seededRandom } from '../onnx/builder.ts';

export type Sample = Record<string, PlainTensor>;

export interface SampleSet {
  samples: Sample[];
  /** Where the samples came from: 'images', 'csv', 'jsonl', 'npy', 'synthetic' or 'given'. */
  origin: 'images' | 'csv' | 'jsonl' | 'npy' | 'synthetic' | 'given';
  /** A path or a short description for the report. */
  description: string;
}

/** The shape of one sample of an input: fixed dims as declared, a dynamic batch 1, other dynamic dims from `fill`. */
export function sampleShape(
  spec: TensorSpec,
  fill: (index: number) => number | undefined = () => undefined,
): number[] {
  return spec.shape.map((d, i) => {
    if (typeof d === 'number' && d > 0) return d;
    if (i === 0 && spec.shape.length > 1) return 1;
    const f = fill(i);
    if (f === undefined)
      throw new ConverterError(
        'DATA_INVALID',
        `input "${spec.name}" has a dynamic dimension ${i} ("${d}") that the data does not determine`,
      );
    return f;
  });
}

function gaussian(rand: () => number): () => number {
  return () => {
    const u = Math.max(rand(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
}

/**
 * Synthetic samples: images as smooth random pictures pushed through the preprocessing, other float
 * inputs as standard normal values, integer inputs as small non-negative values. Dynamic dims → 1.
 */
export function syntheticSamples(
  inputs: readonly TensorSpec[],
  count: number,
  options: { seed?: number; preprocessing?: ImagePreprocessing } = {},
): SampleSet {
  const rand = seededRandom(options.seed ?? 1234);
  const normal = gaussian(rand);
  const samples: Sample[] = [];
  for (let s = 0; s < count; s++) {
    const sample: Sample = {};
    for (const spec of inputs) {
      const shape = sampleShape(spec, () => 1);
      const n = shape.reduce((a, b) => a * b, 1);
      if (spec.dtype === 'float32') {
        const pre = options.preprocessing;
        const data = new Float32Array(n);
        if (pre && n === pre.width * pre.height * (pre.channels === 'GRAY' ? 1 : 3)) {
          const channels = pre.channels === 'GRAY' ? 1 : 3;
          // A random gradient plus noise: closer to pictures than white noise, cheap to make.
          const base = Array.from({ length: channels }, () => rand() * 255);
          const slope = Array.from({ length: channels }, () => (rand() - 0.5) * 4);
          for (let i = 0; i < n; i++) {
            const c = pre.layout === 'NCHW' ? Math.floor(i / (pre.width * pre.height)) : i % channels;
            const pixel = pre.layout === 'NCHW' ? i % (pre.width * pre.height) : Math.floor(i / channels);
            const x = pixel % pre.width;
            const v = Math.min(
              255,
              Math.max(0, (base[c] as number) + (slope[c] as number) * x + normal() * 20),
            );
            const scaled = pre.pixelRange === '0-255' ? v : v / 255;
            data[i] = (scaled - (pre.mean[c] ?? 0)) / (pre.std[c] ?? 1);
          }
        } else for (let i = 0; i < n; i++) data[i] = normal();
        sample[spec.name] = { dtype: 'float32', shape, data };
      } else if (spec.dtype === 'int64') {
        sample[spec.name] = {
          dtype: 'int64',
          shape,
          data: BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * 4))),
        };
      } else if (spec.dtype === 'int32') {
        sample[spec.name] = {
          dtype: 'int32',
          shape,
          data: Int32Array.from({ length: n }, () => Math.floor(rand() * 4)),
        };
      } else if (spec.dtype === 'uint8' || spec.dtype === 'bool') {
        const span = spec.dtype === 'bool' ? 2 : 256;
        sample[spec.name] = {
          dtype: spec.dtype,
          shape,
          data: Uint8Array.from({ length: n }, () => Math.floor(rand() * span)),
        };
      } else {
        throw new ConverterError(
          'DATA_INVALID',
          `cannot make synthetic data for input "${spec.name}" (${spec.dtype})`,
        );
      }
    }
    samples.push(sample);
  }
  return {
    samples,
    origin: 'synthetic',
    description: `${count} synthetic samples (seed ${options.seed ?? 1234})`,
  };
}

/** Split a set into calibration and held-out verification samples (the last share, at least 1). */
export function splitSamples(
  set: SampleSet,
  heldOut = 0.2,
  maxHeldOut = 200,
): { calibration: SampleSet; verification: SampleSet } {
  const n = set.samples.length;
  if (n < 2) return { calibration: set, verification: set };
  const k = Math.min(maxHeldOut, Math.max(1, Math.round(n * heldOut)));
  return {
    calibration: {
      ...set,
      samples: set.samples.slice(0, n - k),
      description: `${set.description} (first ${n - k})`,
    },
    verification: {
      ...set,
      samples: set.samples.slice(n - k),
      description: `${set.description} (last ${k}, held out)`,
    },
  };
}
