/**
 * The TFLite interpreter in Node: the native binding of tfjs-tflite-node (TFLite's C API with
 * XNNPACK, prebuilt for linux x64/arm64), loaded directly so neither tfjs-core nor its wrapper
 * classes come along. Used to verify converted models and to compute smoke tests.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Dtype, NumericArray, PlainTensor, TensorSpec } from '@edgefleet/bundle';
import { TfliteError } from './errors.ts';

interface NativeTensor {
  readonly name: string;
  readonly dataType: string;
  readonly shape: string;
  data(): NumericArray | Float64Array | Uint32Array | BigUint64Array;
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

let native: InterpreterClass | undefined;
let missing: string | undefined;

/** The native Interpreter class, or a TFLITE_RUNTIME_MISSING error saying why it is not there. */
export function loadNativeInterpreter(): InterpreterClass {
  if (native) return native;
  if (missing === undefined) {
    try {
      const require = createRequire(import.meta.url);
      const root = dirname(require.resolve('tfjs-tflite-node/package.json'));
      native = (
        require(join(root, 'build/Release/node_tflite_binding.node')) as { Interpreter: InterpreterClass }
      ).Interpreter;
      return native;
    } catch (error) {
      missing = (error as Error).message.split('\n')[0] ?? 'unknown error';
    }
  }
  throw new TfliteError(
    'TFLITE_RUNTIME_MISSING',
    `the TFLite interpreter (tfjs-tflite-node) is not usable: ${missing}`,
  );
}

const NATIVE_DTYPES: Record<string, Dtype> = {
  float32: 'float32',
  int8: 'int8',
  uint8: 'uint8',
  int16: 'int16',
  int32: 'int32',
  int64: 'int64',
  bool: 'bool',
};

function specOf(t: NativeTensor): TensorSpec {
  const dtype = NATIVE_DTYPES[t.dataType];
  if (!dtype)
    throw new TfliteError(
      'TFLITE_UNSUPPORTED',
      `tensor "${t.name}" has type ${t.dataType}, which edgefleet does not pass`,
    );
  return { name: t.name, dtype, shape: t.shape === '' ? [] : t.shape.split(',').map(Number) };
}

export interface TfliteSession {
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  /** Run once; inputs by tensor name; outputs are copies (the interpreter reuses its buffers). */
  run(feeds: Record<string, PlainTensor>): Record<string, PlainTensor>;
}

export interface TfliteSessionOptions {
  threads?: number;
  /** An external delegate library, e.g. libedgetpu.so.1, with its options. */
  delegate?: { path: string; options?: [string, string][] };
}

/** Load a .tflite model in the interpreter; TFLITE_RUNTIME_FAILED when TFLite refuses it. */
export function openTflite(bytes: Uint8Array, options: TfliteSessionOptions = {}): TfliteSession {
  const Interpreter = loadNativeInterpreter();
  const model = new Uint8Array(bytes).buffer; // the binding wants a whole ArrayBuffer
  let interpreter: NativeInterpreter;
  try {
    interpreter = new Interpreter(model, {
      threads: options.threads ?? 1,
      ...(options.delegate
        ? { delegate: { path: options.delegate.path, options: options.delegate.options ?? [] } }
        : {}),
    });
  } catch (cause) {
    throw new TfliteError('TFLITE_RUNTIME_FAILED', `TFLite cannot load the model: ${tidy(cause)}`, { cause });
  }
  const nativeInputs = interpreter.getInputs();
  const nativeOutputs = interpreter.getOutputs();
  const inputs = nativeInputs.map(specOf);
  const outputs = nativeOutputs.map(specOf);
  return {
    inputs,
    outputs,
    run(feeds) {
      nativeInputs.forEach((t, i) => {
        const spec = inputs[i] as TensorSpec;
        const feed = feeds[t.name];
        if (!feed) throw new TfliteError('TFLITE_RUNTIME_FAILED', `input "${t.name}" is missing`);
        const target = t.data();
        if (feed.dtype !== spec.dtype || feed.data.length !== target.length)
          throw new TfliteError(
            'TFLITE_RUNTIME_FAILED',
            `input "${t.name}" wants ${spec.dtype} [${spec.shape.join(',')}], got ${feed.dtype} [${feed.shape.join(',')}]`,
          );
        (target as Uint8Array).set(feed.data as Uint8Array);
      });
      try {
        interpreter.infer();
      } catch (cause) {
        throw new TfliteError(
          'TFLITE_RUNTIME_FAILED',
          `TFLite failed while running the model: ${tidy(cause)}`,
          {
            cause,
          },
        );
      }
      const out: Record<string, PlainTensor> = {};
      nativeOutputs.forEach((t, i) => {
        const spec = outputs[i] as TensorSpec;
        out[t.name] = {
          dtype: spec.dtype,
          shape: [...spec.shape] as number[],
          data: t.data().slice() as NumericArray,
        };
      });
      return out;
    },
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
