/** Running ONNX models in onnxruntime-node for calibration, smoke tests and verification. */
import type { PlainTensor, TensorSpec } from '@edgefleet/bundle';
import { ConverterError } from '../errors.ts';
import { seededRandom } from './builder.ts';

type Ort = typeof import('onnxruntime-node');
let ort: Promise<Ort> | undefined;
export const loadOrt = (): Promise<Ort> => {
  ort ??= import('onnxruntime-node') as Promise<Ort>;
  return ort;
};

/** Deterministic sample inputs for a model's inputs: dynamic dimensions become 1. */
export function sampleInputs(specs: readonly TensorSpec[], seed = 7): Record<string, PlainTensor> {
  const rand = seededRandom(seed);
  const out: Record<string, PlainTensor> = {};
  for (const spec of specs) {
    const shape = spec.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1));
    const n = shape.reduce((a, b) => a * b, 1);
    const ints = (span: number) => Array.from({ length: n }, () => Math.floor(rand() * span));
    switch (spec.dtype) {
      case 'float32':
        out[spec.name] = {
          dtype: 'float32',
          shape,
          data: Float32Array.from({ length: n }, () => rand() * 2 - 1),
        };
        break;
      case 'int64':
        out[spec.name] = { dtype: 'int64', shape, data: BigInt64Array.from(ints(4), (v) => BigInt(v)) };
        break;
      case 'int32':
        out[spec.name] = { dtype: 'int32', shape, data: Int32Array.from(ints(4)) };
        break;
      case 'uint8':
        out[spec.name] = { dtype: 'uint8', shape, data: Uint8Array.from(ints(256)) };
        break;
      case 'int8':
        out[spec.name] = { dtype: 'int8', shape, data: Int8Array.from(ints(256), (v) => v - 128) };
        break;
      case 'bool':
        out[spec.name] = { dtype: 'bool', shape, data: Uint8Array.from(ints(2)) };
        break;
      default:
        throw new ConverterError(
          'ONNX_UNSUPPORTED',
          `cannot make sample data for input "${spec.name}" of type ${spec.dtype}`,
        );
    }
  }
  return out;
}

export interface SessionOptions {
  /** 'disabled' for calibration (values as the graph defines them), 'all' for deployment-like runs. */
  optimization?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Write the optimised graph here (to see which nodes ORT fused into int8 kernels). */
  optimizedModelFilePath?: string;
  threads?: number;
}

export interface OutputInfo {
  name: string;
  /** ORT's type name ('float32', 'int64', …) or undefined for non-tensors. */
  type: string | undefined;
  shape: (number | string)[] | undefined;
}

export interface RunningSession {
  outputs: OutputInfo[];
  run(inputs: Record<string, PlainTensor>): Promise<Record<string, PlainTensor>>;
  release(): Promise<void>;
}

/** Load a model once and run it many times; ONNX_RUNTIME_FAILED when it does not load or run. */
export async function openSession(model: Uint8Array, options: SessionOptions = {}): Promise<RunningSession> {
  const o = await loadOrt();
  let session: Awaited<ReturnType<Ort['InferenceSession']['create']>>;
  try {
    session = await o.InferenceSession.create(model, {
      graphOptimizationLevel: options.optimization ?? 'all',
      intraOpNumThreads: options.threads ?? 1,
      // ORT's own log goes straight to the terminal; its errors reach us as exceptions anyway.
      logSeverityLevel: 4,
      ...(options.optimizedModelFilePath ? { optimizedModelFilePath: options.optimizedModelFilePath } : {}),
    });
  } catch (cause) {
    throw new ConverterError(
      'ONNX_RUNTIME_FAILED',
      `the model does not load in onnxruntime: ${(cause as Error).message}`,
      { cause },
    );
  }
  const outputs: OutputInfo[] = session.outputMetadata.map((m) => ({
    name: m.name,
    type: m.isTensor ? String(m.type) : undefined,
    shape: m.isTensor ? [...m.shape] : undefined,
  }));
  return {
    outputs,
    async run(inputs) {
      try {
        const feeds: Record<string, InstanceType<Ort['Tensor']>> = {};
        for (const [name, t] of Object.entries(inputs))
          feeds[name] = new o.Tensor(t.dtype as 'float32', t.data as Float32Array, t.shape);
        const result = await session.run(feeds);
        const out: Record<string, PlainTensor> = {};
        for (const [name, t] of Object.entries(result))
          out[name] = {
            dtype: t.type as PlainTensor['dtype'],
            shape: [...t.dims],
            data: t.data as PlainTensor['data'],
          };
        return out;
      } catch (cause) {
        throw new ConverterError(
          'ONNX_RUNTIME_FAILED',
          `the model fails to run: ${(cause as Error).message}`,
          {
            cause,
          },
        );
      }
    },
    release: () => session.release(),
  };
}

/** Run a model (bytes) on inputs in onnxruntime-node; ONNX_RUNTIME_FAILED when it does not load or run. */
export async function runOnnx(
  model: Uint8Array,
  inputs: Record<string, PlainTensor>,
): Promise<Record<string, PlainTensor>> {
  const session = await openSession(model);
  try {
    return await session.run(inputs);
  } finally {
    await session.release();
  }
}
