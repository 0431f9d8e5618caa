/**
 * TFLite as inference backends: `tflite` runs full-int8 (or float) .tflite files on the CPU through
 * the native binding of tfjs-tflite-node (TFLite's C API with XNNPACK; optional dependency), and
 * `tflite+edgetpu` runs compiled `_edgetpu.tflite` files with the Edge TPU delegate
 * (coral-tflite-delegate over the user-installed libedgetpu). Without libedgetpu the Edge TPU
 * backend reports "accelerator missing" and the registry runs the bundle's CPU twin instead.
 *
 * Clients see the model's float face whatever runs: float inputs in the source's layout are
 * quantized (and NCHW → NHWC for a converted ONNX model's 4-D tensors), outputs dequantized back.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch } from 'node:os';
import { dirname, join } from 'node:path';
import type {
  ArtifactEntry,
  BundleManifest,
  Dtype,
  NumericArray,
  PlainTensor,
  TensorSpec,
} from '@edgefleet/bundle';
import type { InferenceBackend, ModelSession } from './backend.ts';

interface NativeTensor {
  readonly name: string;
  readonly dataType: string;
  readonly shape: string;
  data(): NumericArray;
}

interface NativeInterpreter {
  getInputs(): NativeTensor[];
  getOutputs(): NativeTensor[];
  infer(): boolean;
}

type InterpreterClass = new (
  model: ArrayBuffer,
  options: { threads?: number; delegate?: { path: string; options: [string, string][] } },
) => NativeInterpreter;

const require = createRequire(import.meta.url);
let native: { Interpreter?: InterpreterClass; error?: string } | undefined;

/** Where tfjs-tflite-node's native binding is (throws when the package is not installed). */
const bindingPath = () =>
  join(dirname(require.resolve('tfjs-tflite-node/package.json')), 'build/Release/node_tflite_binding.node');

/** The binding, loaded once; the error says why it is not usable (not installed, not built). */
function loadInterpreter(): { Interpreter?: InterpreterClass; error?: string } {
  if (native) return native;
  try {
    const binding = require(bindingPath()) as {
      Interpreter: InterpreterClass;
    };
    native = { Interpreter: binding.Interpreter };
  } catch (error) {
    native = { error: `tfjs-tflite-node is not usable: ${(error as Error).message.split('\n')[0]}` };
  }
  return native;
}

/**
 * Whether the binding is there, without loading it (as the onnxruntime backend does): the native
 * library costs memory only once a model runs. A binding that is there but will not load fails at
 * load time, and the registry moves on with that reason.
 */
function bindingPresent(): { available: boolean; reason?: string } {
  if (native?.error) return { available: false, reason: native.error };
  try {
    if (existsSync(bindingPath())) return { available: true };
    return { available: false, reason: 'tfjs-tflite-node is installed but its native binding was not built' };
  } catch (error) {
    return {
      available: false,
      reason: `tfjs-tflite-node is not installed: ${(error as Error).message.split('\n')[0]}`,
    };
  }
}

/** Where libedgetpu usually lives (Coral's Debian packages), plus LD_LIBRARY_PATH. */
function libraryDirs(): string[] {
  const multiarch = arch() === 'arm64' ? 'aarch64-linux-gnu' : arch() === 'x64' ? 'x86_64-linux-gnu' : '';
  return [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    ...(multiarch ? [`/usr/lib/${multiarch}`, `/lib/${multiarch}`] : []),
    '/usr/local/lib',
    '/usr/lib',
  ];
}

export const LIBEDGETPU = 'libedgetpu.so.1';

/** The libedgetpu the delegate would load, or why there is none. */
export function findLibEdgeTpu(dirs = libraryDirs()): { path?: string; reason?: string } {
  const path = dirs.map((d) => join(d, LIBEDGETPU)).find((p) => existsSync(p));
  return path
    ? { path }
    : {
        reason: `accelerator missing: ${LIBEDGETPU} not found (install libedgetpu1-std from Coral's apt repo)`,
      };
}

const DTYPES: Record<string, Dtype> = {
  float32: 'float32',
  int8: 'int8',
  uint8: 'uint8',
  int16: 'int16',
  int32: 'int32',
  int64: 'int64',
  bool: 'bool',
};

/** Permute rank-4 data NCHW → NHWC (`toNhwc`) or back; `shape` is the source's. */
function permute4d(data: ArrayLike<number>, shape: readonly number[], toNhwc: boolean): Float32Array {
  const [n, a, b, c] = shape as [number, number, number, number];
  const out = new Float32Array(n * a * b * c);
  for (let i = 0; i < n; i++)
    for (let x = 0; x < a; x++)
      for (let y = 0; y < b; y++)
        for (let z = 0; z < c; z++) {
          const src = ((i * a + x) * b + y) * c + z;
          const dst = toNhwc ? ((i * b + y) * c + z) * a + x : ((i * c + z) * a + x) * b + y;
          out[dst] = data[src] as number;
        }
  return out;
}

interface Face {
  /** The tensor as the interpreter holds it. */
  native: NativeTensor;
  spec: TensorSpec;
  /** The float tensor clients see (the manifest's), when it differs from the native one. */
  float?: TensorSpec;
  /** The float side is NCHW and the native side NHWC. */
  transposed: boolean;
}

const numericShape = (s: TensorSpec) => s.shape.map((d) => (typeof d === 'number' ? d : 1));

function faces(
  natives: NativeTensor[],
  declared: TensorSpec[] | undefined,
  model: TensorSpec[],
  fromOnnx: boolean,
): Face[] {
  return natives.map((t, i) => {
    const dtype = DTYPES[t.dataType];
    if (!dtype) throw new Error(`tensor "${t.name}" has type ${t.dataType}, which the agent does not pass`);
    const shape = t.shape === '' ? [] : t.shape.split(',').map(Number);
    const byName = declared?.find((d) => d.name === t.name) ?? declared?.[i];
    const spec: TensorSpec = {
      name: t.name,
      dtype,
      shape,
      ...(byName?.quantization ? { quantization: byName.quantization } : {}),
    };
    const float = model.find((m) => m.name === t.name) ?? model[i];
    const quantized = (dtype === 'int8' || dtype === 'uint8') && spec.quantization;
    if (!quantized || !float || float.dtype !== 'float32') return { native: t, spec, transposed: false };
    // The converter keeps every 4-D tensor of an ONNX model in NHWC (research §7.1).
    return { native: t, spec, float, transposed: fromOnnx && shape.length === 4 };
  });
}

function quantize(face: Face, t: PlainTensor): NumericArray {
  const q = face.spec.quantization as { scale: number; zeroPoint: number };
  const values = face.transposed ? permute4d(t.data as Float32Array, t.shape, true) : t.data;
  const [lo, hi] = face.spec.dtype === 'uint8' ? [0, 255] : [-128, 127];
  const out = face.spec.dtype === 'uint8' ? new Uint8Array(values.length) : new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i]) / q.scale;
    // TFLite rounds half away from zero.
    out[i] = Math.min(hi, Math.max(lo, Math.sign(v) * Math.round(Math.abs(v)) + q.zeroPoint));
  }
  return out;
}

function dequantize(face: Face, data: NumericArray): PlainTensor {
  const q = face.spec.quantization as { scale: number; zeroPoint: number };
  const real = Float32Array.from(data as Int8Array, (v) => q.scale * (v - q.zeroPoint));
  const shape = numericShape(face.spec);
  if (!face.transposed) return { dtype: 'float32', shape, data: real };
  const [n, h, w, c] = shape as [number, number, number, number];
  return { dtype: 'float32', shape: [n, c, h, w], data: permute4d(real, shape, false) };
}

/**
 * tfjs-tflite-node frees the model and its options when the Interpreter constructor fails, and
 * again when the failed object is collected: a double free that kills the process at some later
 * garbage collection (seen as an agent that vanished after falling back to the CPU twin). A
 * construction that can fail on a healthy device — the Edge TPU delegate, when libedgetpu is
 * broken or no accelerator is plugged in — is therefore tried first in a short-lived child process,
 * and done here only if it worked there.
 */
function probeInChild(path: string, delegate: { path: string; options: [string, string][] }): Promise<void> {
  const binding = bindingPath();
  const script = [
    `const { Interpreter } = require(${JSON.stringify(binding)});`,
    `const bytes = require('node:fs').readFileSync(${JSON.stringify(path)});`,
    'try {',
    `  new Interpreter(new Uint8Array(bytes).buffer, { threads: 1, delegate: ${JSON.stringify(delegate)} });`,
    '  process.exit(0);',
    '} catch (error) {',
    '  process.stderr.write(String(error && error.message ? error.message : error));',
    '  process.exit(3);',
    '}',
  ].join('\n');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script], { timeout: 60_000 }, (error, _stdout, stderr) => {
      if (!error) return resolve();
      const why = stderr.trim() || (error.signal ? `the probe died of ${error.signal}` : error.message);
      reject(new Error(why));
    });
  });
}

/** Open a .tflite file as a session with the model's float face. */
async function openSession(
  backend: string,
  path: string,
  artifact: ArtifactEntry,
  manifest: BundleManifest,
  options: { threads?: number; delegate?: { path: string; options: [string, string][] } },
): Promise<ModelSession> {
  const { Interpreter, error } = loadInterpreter();
  if (!Interpreter) throw new Error(error);
  if (options.delegate)
    await probeInChild(path, options.delegate).catch((cause: unknown) => {
      throw new Error(`TFLite cannot load ${artifact.file} with the Edge TPU delegate: ${tidy(cause)}`, {
        cause,
      });
    });
  const bytes = await readFile(path);
  let interpreter: NativeInterpreter;
  try {
    interpreter = new Interpreter(new Uint8Array(bytes).buffer, {
      threads: options.threads ?? 1,
      ...(options.delegate ? { delegate: options.delegate } : {}),
    });
  } catch (cause) {
    throw new Error(`TFLite cannot load ${artifact.file}: ${tidy(cause)}`, { cause });
  }
  const fromOnnx = manifest.source.format === 'onnx';
  const ins = faces(interpreter.getInputs(), artifact.inputs, manifest.inputs, fromOnnx);
  const outs = faces(interpreter.getOutputs(), artifact.outputs, manifest.outputs, fromOnnx);
  return {
    backend,
    inputs: ins.map((f) => f.float ?? f.spec),
    outputs: outs.map((f) => f.float ?? f.spec),
    async run(feeds) {
      for (const face of ins) {
        const feed = feeds[face.native.name];
        if (!feed) throw new Error(`input "${face.native.name}" is missing`);
        const target = face.native.data();
        const data = face.float && feed.dtype === 'float32' ? quantize(face, feed) : feed.data;
        if (data.length !== target.length)
          throw new Error(
            `input "${face.native.name}" wants ${target.length} values [${face.spec.shape.join(',')}], got ${data.length}`,
          );
        if (!face.float && feed.dtype !== face.spec.dtype)
          throw new Error(`input "${face.native.name}" wants ${face.spec.dtype}, got ${feed.dtype}`);
        (target as Uint8Array).set(data as Uint8Array);
      }
      try {
        interpreter.infer();
      } catch (cause) {
        throw new Error(`TFLite failed while running ${artifact.file}: ${tidy(cause)}`, { cause });
      }
      const out: Record<string, PlainTensor> = {};
      for (const face of outs) {
        const data = face.native.data().slice() as NumericArray; // the interpreter reuses its buffers
        out[face.native.name] = face.float
          ? dequantize(face, data)
          : { dtype: face.spec.dtype, shape: numericShape(face.spec), data };
      }
      return out;
    },
    // The binding frees the interpreter when it is garbage collected.
    close: async () => undefined,
  };
}

/** TFLite's messages span lines and end with a URL; keep the lines that say what went wrong. */
function tidy(error: unknown): string {
  return (error as Error).message
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('See instructions'))
    .join(' ');
}

/** TFLite on the CPU: `tflite` artifacts (the Edge TPU model's CPU twin among them). */
export function tfliteBackend(options: { threads?: number } = {}): InferenceBackend {
  return {
    name: 'tflite',
    priority: 5,
    availability: async () => bindingPresent(),
    canRun: (a) => a.runtime === 'tflite' && a.target !== 'edgetpu',
    load: (path, artifact, manifest) => openSession('tflite', path, artifact, manifest, options),
  };
}

/** TFLite with the Edge TPU delegate: compiled `_edgetpu.tflite` artifacts. */
export function edgeTpuBackend(options: { threads?: number; libraryDirs?: string[]; device?: string } = {}) {
  const lib = () => findLibEdgeTpu(options.libraryDirs);
  const backend: InferenceBackend = {
    name: 'tflite+edgetpu',
    priority: 20,
    async availability() {
      const binding = bindingPresent();
      if (!binding.available) return binding;
      try {
        require.resolve('coral-tflite-delegate');
      } catch {
        return { available: false, reason: 'accelerator missing: coral-tflite-delegate is not installed' };
      }
      const found = lib();
      return found.path ? { available: true } : { available: false, reason: found.reason as string };
    },
    canRun: (a) => a.runtime === 'tflite' && a.target === 'edgetpu',
    async load(path, artifact, manifest) {
      const found = lib();
      if (!found.path) throw new Error(found.reason);
      // coral-tflite-delegate only names the library and its options; the binding loads it.
      const { CoralDelegate } = require('coral-tflite-delegate') as {
        CoralDelegate: new (
          o: { device?: string },
          libPath?: string,
        ) => { node: { path: string }; options: [string, string][] };
      };
      const delegate = new CoralDelegate(options.device ? { device: options.device } : {}, found.path);
      return openSession('tflite+edgetpu', path, artifact, manifest, {
        ...options,
        delegate: { path: delegate.node.path, options: delegate.options },
      });
    },
  };
  return backend;
}
