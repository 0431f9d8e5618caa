/**
 * onnxruntime-web (WASM) in Node: the same engine browsers run, so a converted artifact is checked
 * against it as well as against onnxruntime-node. Its integer kernels do not have the x86 non-VNNI
 * saturation of ORT-node, so it also stands in for ARM64 devices (research §0.3, §0.5).
 */
import type { PlainTensor } from '@edgefleet/bundle';
import { ConverterError } from '../errors.ts';
import type { RunningSession } from '../onnx/runtime.ts';

type OrtWeb = typeof import('onnxruntime-web');
let ortWeb: Promise<OrtWeb> | undefined;

function loadOrtWeb(): Promise<OrtWeb> {
  ortWeb ??= (import('onnxruntime-web') as Promise<OrtWeb>).then((ort) => {
    // One thread: no worker files to locate, deterministic reductions.
    ort.env.wasm.numThreads = 1;
    ort.env.logLevel = 'error';
    return ort;
  });
  return ortWeb;
}

/** Open a model in onnxruntime-web's WASM backend. */
export async function openWasmSession(model: Uint8Array): Promise<RunningSession> {
  const ort = await loadOrtWeb();
  let session: Awaited<ReturnType<OrtWeb['InferenceSession']['create']>>;
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: ['wasm'],
      graphOptimizationLevel: 'all',
    });
  } catch (cause) {
    throw new ConverterError(
      'ONNX_RUNTIME_FAILED',
      `the model does not load in onnxruntime-web (wasm): ${String((cause as Error).message ?? cause)}`,
      { cause },
    );
  }
  return {
    outputs: session.outputNames.map((name) => ({ name, type: undefined, shape: undefined })),
    async run(inputs) {
      try {
        const feeds: Record<string, InstanceType<OrtWeb['Tensor']>> = {};
        for (const [name, t] of Object.entries(inputs))
          feeds[name] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, t.shape);
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
          `the model fails to run in onnxruntime-web (wasm): ${String((cause as Error).message ?? cause)}`,
          { cause },
        );
      }
    },
    release: () => session.release(),
  };
}
