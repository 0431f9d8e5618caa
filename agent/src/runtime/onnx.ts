import { createRequire } from 'node:module';
/** onnxruntime-node (CPU) as an inference backend. */
import type { ArtifactEntry, Dtype, PlainTensor, TensorSpec } from '@edgefleet/bundle';
import type { InferenceBackend, ModelSession } from './backend.ts';

type Ort = typeof import('onnxruntime-node');

const ortTypes: Partial<Record<Dtype, string>> = {
  float32: 'float32',
  float16: 'float16',
  int8: 'int8',
  uint8: 'uint8',
  int16: 'int16',
  int32: 'int32',
  int64: 'int64',
  bool: 'bool',
};

const fromOrt: Record<string, Dtype> = Object.fromEntries(
  Object.entries(ortTypes).map(([k, v]) => [v, k as Dtype]),
);

let ortModule: Promise<Ort> | undefined;
/** Loaded lazily: the native library costs memory only once a model runs. */
const loadOrt = () => {
  ortModule ??= import('onnxruntime-node') as Promise<Ort>;
  return ortModule;
};

export function onnxBackend(options: { threads?: number } = {}): InferenceBackend {
  return {
    name: 'onnxruntime-cpu',
    priority: 10,
    async availability() {
      // Resolve without loading: the native library costs memory only once a model runs.
      try {
        createRequire(import.meta.url).resolve('onnxruntime-node');
        return { available: true };
      } catch (error) {
        return { available: false, reason: `onnxruntime-node is not installed: ${(error as Error).message}` };
      }
    },
    canRun: (artifact: ArtifactEntry) =>
      artifact.runtime === 'onnxruntime' && (artifact.target === 'cpu' || artifact.target === 'wasm'),
    async load(path, artifact, manifest): Promise<ModelSession> {
      const ort = await loadOrt();
      const session = await ort.InferenceSession.create(path, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        intraOpNumThreads: options.threads ?? 1,
        interOpNumThreads: 1,
      });
      const spec = (names: readonly string[], declared: TensorSpec[] | undefined): TensorSpec[] =>
        names.map((name) => declared?.find((d) => d.name === name) ?? { name, shape: [], dtype: 'float32' });
      const inputs = spec(session.inputNames, artifact.inputs ?? manifest.inputs);
      const outputs = spec(session.outputNames, artifact.outputs ?? manifest.outputs);
      return {
        backend: 'onnxruntime-cpu',
        inputs,
        outputs,
        async run(feeds) {
          const ortFeeds: Record<string, InstanceType<Ort['Tensor']>> = {};
          for (const [name, t] of Object.entries(feeds)) {
            const type = ortTypes[t.dtype];
            if (!type) throw new Error(`input ${name}: dtype ${t.dtype} is not supported by onnxruntime`);
            ortFeeds[name] = new ort.Tensor(type as 'float32', t.data as Float32Array, t.shape);
          }
          const result = await session.run(ortFeeds);
          const out: Record<string, PlainTensor> = {};
          for (const [name, tensor] of Object.entries(result)) {
            out[name] = {
              dtype: fromOrt[tensor.type] ?? 'float32',
              shape: [...tensor.dims],
              data: tensor.data as PlainTensor['data'],
            };
          }
          return out;
        },
        close: () => session.release(),
      };
    },
  };
}
