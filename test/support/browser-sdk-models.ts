/**
 * Real models and signed bundles for the browser-SDK tests: a PyTorch-exported Conv2d converted
 * for cpu+webgpu by the converters (int8 CPU, fp16 WebGPU with its fp32 fallback), the TFLite
 * "hello world" sine regressor as a TFLite-only version, and a ~1 M-parameter CNN for timings.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  describeFile,
  type PackedBundle,
  type PlainTensor,
  packBundle,
  type SigningKeyFile,
} from '@edgefleet/bundle';
import {
  buildModel,
  convertModel,
  type InitializerSpec,
  mlpModel,
  type NodeSpec,
  packConversion,
  runOnnx,
  seededRandom,
} from '@edgefleet/converters';
import { sharedDir } from './services.ts';

export const CONV2D_ONNX = () =>
  join(sharedDir(), 'conformance/onnx-backend/pytorch-converted/test_Conv2d/model.onnx');
export const SINE_TFLITE = () => join(sharedDir(), 'models/tflite/hello_world_float.tflite');

/** Deterministic values in [-1, 1). */
export function seededData(count: number, seed: number): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length: count }, () => rand() * 2 - 1);
}

/** Conv2d (input "0": [2,3,7,5]) converted for cpu and webgpu, signed with `key`. */
export async function convBundle(
  key: SigningKeyFile,
  name = 'conv',
  version = '1.0.0',
): Promise<PackedBundle> {
  const source = new Uint8Array(await readFile(CONV2D_ONNX()));
  const result = await convertModel(source, { targets: ['cpu', 'webgpu'] });
  return packConversion(result, { name, version, key });
}

/** An MLP (input "input": [1,16]) converted for webgpu only: fp16 plus its fp32 fallback. */
export async function mlpBundle(key: SigningKeyFile, name = 'mlp', version = '1.0.0'): Promise<PackedBundle> {
  const source = mlpModel({ inputs: 16, hidden: [64, 32], outputs: 4, softmax: true, seed: 4 });
  const result = await convertModel(source, { targets: ['webgpu'] });
  return packConversion(result, { name, version, key });
}

/** The TFLite sine model as a version with only a TFLite artifact. */
export async function sineBundle(
  key: SigningKeyFile,
  name = 'sine',
  version = '1.0.0',
): Promise<PackedBundle> {
  const bytes = new Uint8Array(await readFile(SINE_TFLITE()));
  const ref = await describeFile('tflite/model.tflite', bytes);
  return packBundle(
    {
      format: 'edgefleet-bundle',
      formatVersion: 1,
      name,
      version,
      createdAt: new Date().toISOString(),
      source: { format: 'tflite', sha256: ref.sha256, size_bytes: ref.size_bytes },
      inputs: [{ name: 'x', shape: [1, 1], dtype: 'float32' }],
      outputs: [{ name: 'y', shape: [1, 1], dtype: 'float32' }],
      artifacts: [{ ...ref, target: 'tflite', runtime: 'tflite', precision: 'fp32', requires: [] }],
    },
    new Map([[ref.file, bytes]]),
    key,
  );
}

export const CNN_LABELS = ['apple', 'bee', 'cat', 'dune', 'eel', 'fern', 'gull', 'heron', 'ibis', 'jay'];
export const CNN_PREPROCESSING = {
  kind: 'image',
  width: 64,
  height: 64,
  layout: 'NCHW',
  channels: 'RGB',
  pixelRange: '0-1',
  mean: [0.5, 0.5, 0.5],
  std: [0.25, 0.25, 0.25],
} as const;

/** The CNN as an image classifier: fp32 CPU artifact, image preprocessing and labels in the manifest. */
export async function imageClassifierBundle(key: SigningKeyFile, name = 'cnn', version = '1.1.0') {
  const result = await convertModel(cnnModel(), { targets: ['cpu'], quantize: 'none', verifyWasm: false });
  return packConversion(result, {
    name,
    version,
    key,
    labels: CNN_LABELS,
    preprocessing: {
      ...CNN_PREPROCESSING,
      mean: [...CNN_PREPROCESSING.mean],
      std: [...CNN_PREPROCESSING.std],
    },
  });
}

/** A ~1.1 M-parameter image CNN (Conv-Relu-Pool ×3 on 3×64×64, Gemm 8192→128→10, Softmax). */
export function cnnModel(seed = 3): Uint8Array {
  const rand = seededRandom(seed);
  const weights = (n: number, fanIn: number) =>
    Float32Array.from({ length: n }, () => (rand() * 2 - 1) * Math.sqrt(2 / fanIn));
  const nodes: NodeSpec[] = [];
  const initializers: InitializerSpec[] = [];
  let x = 'image';
  let channels = 3;
  for (const [i, out] of [32, 64, 128].entries()) {
    initializers.push({
      name: `c${i}.w`,
      dims: [out, channels, 3, 3],
      data: weights(out * channels * 9, channels * 9),
    });
    initializers.push({ name: `c${i}.b`, dims: [out], data: weights(out, out) });
    nodes.push({
      op: 'Conv',
      inputs: [x, `c${i}.w`, `c${i}.b`],
      outputs: [`c${i}`],
      attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
    });
    nodes.push({ op: 'Relu', inputs: [`c${i}`], outputs: [`r${i}`] });
    nodes.push({
      op: 'MaxPool',
      inputs: [`r${i}`],
      outputs: [`p${i}`],
      attrs: { kernel_shape: [2, 2], strides: [2, 2] },
    });
    x = `p${i}`;
    channels = out;
  }
  nodes.push({ op: 'Flatten', inputs: [x], outputs: ['flat'], attrs: { axis: 1 } });
  initializers.push({ name: 'fc1.w', dims: [8192, 128], data: weights(8192 * 128, 8192) });
  initializers.push({ name: 'fc1.b', dims: [128], data: weights(128, 128) });
  initializers.push({ name: 'fc2.w', dims: [128, 10], data: weights(1280, 128) });
  initializers.push({ name: 'fc2.b', dims: [10], data: weights(10, 10) });
  nodes.push({ op: 'Gemm', inputs: ['flat', 'fc1.w', 'fc1.b'], outputs: ['fc1'] });
  nodes.push({ op: 'Relu', inputs: ['fc1'], outputs: ['fc1r'] });
  nodes.push({ op: 'Gemm', inputs: ['fc1r', 'fc2.w', 'fc2.b'], outputs: ['logits'] });
  nodes.push({ op: 'Softmax', inputs: ['logits'], outputs: ['probabilities'], attrs: { axis: 1 } });
  return buildModel({
    inputs: [{ name: 'image', shape: [1, 3, 64, 64] }],
    outputs: [{ name: 'probabilities', shape: [1, 10] }],
    nodes,
    initializers,
  });
}

/** onnxruntime-node's outputs for `model` on one float32 input: the reference the browser must match. */
export async function ortNodeOutputs(
  model: Uint8Array,
  input: { name: string; shape: number[]; data: number[] },
): Promise<Record<string, number[]>> {
  const inputs: Record<string, PlainTensor> = {
    [input.name]: { dtype: 'float32', shape: input.shape, data: Float32Array.from(input.data) },
  };
  const outputs = await runOnnx(model, inputs);
  return Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, Array.from(t.data as Float32Array)]));
}

/** tfjs-tflite-node's (native TFLite) output for a one-input float model: the reference for tfjs-tflite. */
export function tfliteNodeOutput(model: Uint8Array, input: number[]): number[] {
  const require = createRequire(import.meta.url);
  const { TFLiteNodeModelRunner } = require('tfjs-tflite-node') as {
    TFLiteNodeModelRunner: new (
      model: ArrayBuffer,
      options: { threads: number },
    ) => {
      getInputs(): { data(): Float32Array }[];
      getOutputs(): { data(): Float32Array }[];
      infer(): boolean;
    };
  };
  const runner = new TFLiteNodeModelRunner(model.slice().buffer as ArrayBuffer, { threads: 1 });
  runner.getInputs()[0]?.data().set(input);
  if (!runner.infer()) throw new Error('tflite-node inference failed');
  return Array.from(runner.getOutputs()[0]?.data() ?? []);
}

/** Largest absolute difference between two equally long arrays (Infinity when lengths differ). */
export function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
}
