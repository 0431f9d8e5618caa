/**
 * onnxruntime-web as an engine. The module itself is handed in (`loadOrt`), because pages get it
 * from different places: the hub's /sdk/ort/ files, a bundler's `import 'onnxruntime-web'`, or
 * Node's wasm build in tests. One session per artifact and execution provider; runs are serialized
 * by the caller.
 */
import type * as Ort from 'onnxruntime-web';
import type { ExecutionProvider } from '../plan.ts';
import { fromHalf, type Tensor, type TypedArray } from '../tensors.ts';
import type { Engine, EngineSession } from './engine.ts';

export type OrtModule = typeof Ort;

/** Returns an onnxruntime-web module able to run `executionProvider`. */
export type LoadOrt = (executionProvider: ExecutionProvider) => Promise<OrtModule>;

/** An Engine backed by onnxruntime-web. */
export function onnxEngine(loadOrt: LoadOrt): Engine {
  return {
    name: 'onnxruntime-web',
    async open({ bytes, executionProvider, outputs }) {
      const ort = await loadOrt(executionProvider);
      // Only the requested EP: a silent per-session switch to another EP would make `backend` lie.
      // (ORT still places shape-only nodes on its CPU kernels inside a WebGPU session.)
      const session = await ort.InferenceSession.create(bytes, {
        executionProviders: [executionProvider],
        graphOptimizationLevel: 'all',
      });
      const names = session.outputNames;
      // Report outputs under the manifest's names when the file uses others in the same order.
      const rename =
        outputs.length === names.length && !outputs.every((o) => names.includes(o.name))
          ? new Map(names.map((n, i) => [n, outputs[i]?.name ?? n]))
          : undefined;
      const opened: EngineSession = {
        async run(inputs) {
          const feeds: Record<string, Ort.Tensor> = {};
          for (const [name, t] of Object.entries(inputs)) {
            feeds[name] = new ort.Tensor(t.dtype as Ort.Tensor.Type, t.data as Ort.Tensor.DataType, t.shape);
          }
          const results = await session.run(feeds);
          const out: Record<string, Tensor> = {};
          for (const name of names) {
            const r = results[name];
            if (!r) continue;
            out[rename?.get(name) ?? name] = toTensor(r);
          }
          return out;
        },
        async dispose() {
          await session.release();
        },
      };
      return opened;
    },
  };
}

function toTensor(t: Ort.Tensor): Tensor {
  const shape = t.dims.map(Number);
  if (t.type === 'float16') {
    // Callers get numbers: an fp16 output arrives as Uint16Array bits (or Float16Array where it exists).
    const raw = t.data as ArrayLike<number>;
    const data =
      raw instanceof Uint16Array
        ? Float32Array.from(raw, fromHalf)
        : Float32Array.from(raw as ArrayLike<number>);
    return { dtype: 'float32', shape, data };
  }
  return { dtype: t.type as Tensor['dtype'], shape, data: t.data as TypedArray };
}
