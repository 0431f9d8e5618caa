/**
 * Where a page gets the engines from when it uses the prebuilt SDK (`/sdk/edgefleet.js`): files
 * next to the SDK on the same server, so one `<script type="module">` import is all a page needs.
 *
 *   /sdk/ort/ort.webgpu.min.mjs + ort-wasm-simd-threaded.asyncify.{mjs,wasm}   WebGPU (and WASM)
 *   /sdk/ort/ort.wasm.min.mjs   + ort-wasm-simd-threaded.{mjs,wasm}            WASM only
 *   /sdk/tflite/tflite_web_api_client.js + tflite_web_api_cc*.{js,wasm}        tfjs-tflite
 *
 * (from node_modules/onnxruntime-web/dist and node_modules/@tensorflow/tfjs-tflite/wasm).
 */
import type { Capabilities } from './capabilities.ts';
import type { Runtimes } from './model.ts';
import type { OrtModule } from './runtimes/onnx.ts';
import type { TfliteClient } from './runtimes/tflite.ts';

export interface AssetOptions {
  /** Folder of onnxruntime-web's dist files; `./ort/` next to the SDK by default. */
  ortBase?: string | URL;
  /** Folder of tfjs-tflite's wasm files; `./tflite/` next to the SDK by default. */
  tfliteBase?: string | URL;
  /** onnxruntime-web log level; `error` keeps pages' consoles quiet. */
  ortLogLevel?: 'verbose' | 'info' | 'warning' | 'error' | 'fatal';
}

/** Engines loaded on demand from URLs; `sdkUrl` is the SDK's own URL (import.meta.url). */
export function urlRuntimes(
  sdkUrl: string,
  assets: AssetOptions = {},
  caps?: Pick<Capabilities, 'crossOriginIsolated' | 'hardwareConcurrency'>,
): Runtimes {
  const ortBase = new URL(assets.ortBase ?? './ort/', sdkUrl);
  const tfliteBase = new URL(assets.tfliteBase ?? './tflite/', sdkUrl);
  let webgpuOrt: Promise<OrtModule> | undefined;
  let wasmOrt: Promise<OrtModule> | undefined;
  const importOrt = async (file: string): Promise<OrtModule> => {
    const ort = (await import(/* @vite-ignore */ new URL(file, ortBase).href)) as OrtModule;
    ort.env.wasm.wasmPaths = ortBase.href;
    // Threads need cross-origin isolation (SharedArrayBuffer); without it ORT warns and uses one.
    const isolated = caps?.crossOriginIsolated ?? globalThis.crossOriginIsolated === true;
    ort.env.wasm.numThreads = isolated
      ? Math.min(4, caps?.hardwareConcurrency ?? navigator.hardwareConcurrency ?? 1)
      : 1;
    ort.env.logLevel = assets.ortLogLevel ?? 'error';
    return ort;
  };
  let tflite: Promise<TfliteClient> | undefined;
  return {
    onnx(executionProvider) {
      // The WebGPU build also runs the WASM EP: after a WebGPU fallback nothing more is downloaded.
      if (executionProvider === 'webgpu' || webgpuOrt) {
        webgpuOrt ??= importOrt('ort.webgpu.min.mjs');
        return webgpuOrt;
      }
      wasmOrt ??= importOrt('ort.wasm.min.mjs');
      return wasmOrt;
    },
    tflite() {
      tflite ??= loadTfliteClient(tfliteBase);
      return tflite;
    },
  };
}

interface TfwebGlobal {
  tfweb?: TfliteClient & { tflite_web_api: { setWasmPath(path: string): void } };
}

/**
 * tfjs-tflite's client is a classic script that sets `globalThis.tfweb` and ends with a CommonJS
 * `exports.tfweb = …` line; run it with an `exports` object of its own so that line cannot throw.
 */
async function loadTfliteClient(base: URL): Promise<TfliteClient> {
  const g = globalThis as TfwebGlobal;
  if (!g.tfweb) {
    const response = await fetch(new URL('tflite_web_api_client.js', base));
    if (!response.ok) throw new Error(`tfjs-tflite client not found at ${base.href} (${response.status})`);
    const source = `(function (exports) {\n${await response.text()}\n}).call(globalThis, {});`;
    const url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    try {
      await runClassicScript(url);
    } finally {
      URL.revokeObjectURL(url);
    }
  }
  if (!g.tfweb) throw new Error('tfjs-tflite client did not define tfweb');
  g.tfweb.tflite_web_api.setWasmPath(base.href);
  return g.tfweb;
}

function runClassicScript(url: string): Promise<void> {
  const doc = globalThis.document;
  if (!doc) {
    (globalThis as unknown as { importScripts(u: string): void }).importScripts(url); // a worker
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => {
    const script = doc.createElement('script');
    script.src = url;
    script.onload = () => resolve();
    script.onerror = () => reject(new Error('could not run the tfjs-tflite client script'));
    doc.head.appendChild(script);
  });
}
