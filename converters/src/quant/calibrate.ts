/**
 * Calibration: run the fp32 model in onnxruntime-node with the tensors to quantize exposed as
 * outputs, over the user's samples, and turn what was seen into a range per tensor. Histogram
 * methods take a second pass with the range of the first, so every sample lands in the same bins.
 */
import { create } from '@bufbuild/protobuf';
import type { PlainTensor } from '@edgefleet/bundle';
import { type ModelProto, ValueInfoProtoSchema } from 'onnx-buf';
import { serializeOnnx } from '../onnx/io.ts';
import { openSession } from '../onnx/runtime.ts';
import {
  addToHistogram,
  emptyHistogram,
  entropyRange,
  type Histogram,
  percentileRange,
} from './histogram.ts';

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

export interface CalibrationOptions {
  method?: CalibrationMethod;
  /** Percentile kept by the percentile method (onnxruntime's default 99.999). */
  percentile?: number;
  /** Called after each sample: (pass, done, total). */
  onProgress?: (pass: string, done: number, total: number) => void;
}

export type Ranges = Map<string, [number, number]>;

/** A copy of the model whose outputs are `names` (plus nothing else), for reading intermediates. */
export function exposeTensors(model: ModelProto, names: readonly string[]): Uint8Array {
  const graph = model.graph;
  if (!graph) throw new Error('model without graph');
  const saved = graph.output;
  graph.output = names.map(
    (name) => saved.find((o) => o.name === name) ?? create(ValueInfoProtoSchema, { name }),
  );
  try {
    return serializeOnnx(model);
  } finally {
    graph.output = saved;
  }
}

function floats(t: PlainTensor | undefined): Float32Array | undefined {
  return t && t.data instanceof Float32Array ? t.data : undefined;
}

/** The range of every named float tensor over the samples, by the chosen method. */
export async function calibrate(
  model: ModelProto,
  names: readonly string[],
  samples: readonly Record<string, PlainTensor>[],
  options: CalibrationOptions = {},
): Promise<Ranges> {
  const method = options.method ?? 'minmax';
  const session = await openSession(exposeTensors(model, names), { optimization: 'disabled' });
  const ranges: Ranges = new Map();
  try {
    for (const [i, sample] of samples.entries()) {
      const out = await session.run(sample);
      for (const name of names) {
        const data = floats(out[name]);
        if (!data) continue;
        let [lo, hi] = ranges.get(name) ?? [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
        for (let k = 0; k < data.length; k++) {
          const v = data[k] as number;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        ranges.set(name, [lo, hi]);
      }
      options.onProgress?.('ranges', i + 1, samples.length);
    }
    for (const [name, [lo, hi]] of ranges) if (!(lo <= hi)) ranges.set(name, [0, 0]);
    if (method === 'minmax') return ranges;

    const histograms = new Map<string, Histogram>();
    for (const [name, [lo, hi]] of ranges) {
      const absmax = Math.max(Math.abs(lo), Math.abs(hi));
      histograms.set(
        name,
        method === 'percentile'
          ? emptyHistogram(2048, 0, absmax, lo, hi)
          : emptyHistogram(2048, -absmax, absmax, lo, hi),
      );
    }
    for (const [i, sample] of samples.entries()) {
      const out = await session.run(sample);
      for (const [name, h] of histograms) {
        const data = floats(out[name]);
        if (data) addToHistogram(h, data, method === 'percentile');
      }
      options.onProgress?.('histograms', i + 1, samples.length);
    }
    const result: Ranges = new Map();
    for (const [name, h] of histograms)
      result.set(
        name,
        method === 'percentile' ? percentileRange(h, options.percentile ?? 99.999) : entropyRange(h),
      );
    return result;
  } finally {
    await session.release();
  }
}
