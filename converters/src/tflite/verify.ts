/**
 * Verification of a converted TFLite model against its fp32 ONNX source on held-out samples: both
 * run for real (onnxruntime-node, the TFLite interpreter), TFLite outputs are dequantized, and the
 * per-output error and top-1 agreement come from the same metrics the ONNX artifacts use.
 */
import type { PlainTensor } from '@edgefleet/bundle';
import type { Sample } from '../data/samples.ts';
import { openSession } from '../onnx/runtime.ts';
import { OutputComparison, type OutputMetrics, worstOf } from '../verify/metrics.ts';
import { TfliteError } from './errors.ts';
import { dequantizeOutput, quantizeInput } from './facade.ts';
import { openTflite } from './interpreter.ts';
import type { TfliteIo } from './lower/index.ts';

export interface TfliteVerification {
  runtime: 'tflite';
  outputs: OutputMetrics[];
  worst: ReturnType<typeof worstOf>;
  samples: number;
}

/** Run the TFLite model on float samples through its float face; outputs in ONNX layout. */
export function runTfliteFloat(
  bytes: Uint8Array,
  io: { inputs: TfliteIo[]; outputs: TfliteIo[] },
  samples: readonly Sample[],
): Record<string, PlainTensor>[] {
  const session = openTflite(bytes);
  return samples.map((sample) => {
    const feeds: Record<string, PlainTensor> = {};
    for (const input of io.inputs) {
      const t = sample[input.name];
      if (!t) throw new TfliteError('TFLITE_RUNTIME_FAILED', `sample has no input "${input.name}"`);
      feeds[input.name] = quantizeInput(t, input);
    }
    const out = session.run(feeds);
    return Object.fromEntries(
      io.outputs.map((o) => {
        const t = out[o.name];
        if (!t) throw new TfliteError('TFLITE_RUNTIME_FAILED', `the model gave no output "${o.name}"`);
        return [o.name, dequantizeOutput(t, o)];
      }),
    );
  });
}

/** Compare the TFLite model with the ONNX source on the samples. */
export async function verifyTflite(
  tflite: Uint8Array,
  io: { inputs: TfliteIo[]; outputs: TfliteIo[] },
  onnx: Uint8Array,
  samples: readonly Sample[],
): Promise<TfliteVerification> {
  const candidates = runTfliteFloat(tflite, io, samples);
  const reference = await openSession(onnx);
  const comparison = new OutputComparison();
  try {
    for (const [i, sample] of samples.entries()) {
      const ref = await reference.run(sample);
      comparison.add(
        Object.fromEntries(io.outputs.map((o) => [o.name, ref[o.name] as PlainTensor])),
        candidates[i] as Record<string, PlainTensor>,
      );
    }
  } finally {
    await reference.release();
  }
  const outputs = comparison.result();
  return { runtime: 'tflite', outputs, worst: worstOf(outputs), samples: samples.length };
}
