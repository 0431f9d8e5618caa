/**
 * A small image classifier of ~1.15 M parameters built in code (tests and `edgefleet bench` use it),
 * whose decisions mean something: a seeded random conv feature extractor (Conv-BN-Relu-Pool ×3,
 * Linear 2048→512) and a last layer fitted as a nearest-class-mean classifier on features of ten
 * synthetic picture classes. Inputs are each class's smooth prototype plus noise, so top-1
 * agreement measures real decision flips.
 */
import type { PlainTensor } from '@edgefleet/bundle';
import { buildModel, type InitializerSpec, type NodeSpec, seededRandom } from './builder.ts';
import { openSession } from './runtime.ts';

export const CNN_CLASSES = 10;
export const CNN_SIZE = 32;

function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
}

function heWeights(rand: () => number, count: number, fanIn: number): Float32Array {
  const normal = gaussian(rand);
  const s = Math.sqrt(2 / fanIn);
  return Float32Array.from({ length: count }, () => normal() * s);
}

/** Ten class prototypes: a few random plane waves per channel. */
function prototypes(seed: number): Float32Array[] {
  const rand = seededRandom(seed);
  return Array.from({ length: CNN_CLASSES }, () => {
    const img = new Float32Array(3 * CNN_SIZE * CNN_SIZE);
    for (let c = 0; c < 3; c++)
      for (let w = 0; w < 3; w++) {
        const [fx, fy, phase, amp] = [rand() * 0.5, rand() * 0.5, rand() * 6.28, 0.4 + rand() * 0.6];
        for (let y = 0; y < CNN_SIZE; y++)
          for (let x = 0; x < CNN_SIZE; x++) {
            const i = c * CNN_SIZE * CNN_SIZE + y * CNN_SIZE + x;
            img[i] = (img[i] as number) + amp * Math.sin(fx * x + fy * y + phase);
          }
      }
    return img;
  });
}

/** Labelled samples: prototype × random contrast + Gaussian noise. */
export function cnnSamples(
  count: number,
  seed: number,
  noise = 0.6,
): { samples: Record<string, PlainTensor>[]; labels: number[] } {
  const protos = prototypes(99);
  const rand = seededRandom(seed);
  const normal = gaussian(rand);
  const samples: Record<string, PlainTensor>[] = [];
  const labels: number[] = [];
  for (let i = 0; i < count; i++) {
    const label = i % CNN_CLASSES;
    const proto = protos[label] as Float32Array;
    const contrast = 0.7 + rand() * 0.6;
    const data = Float32Array.from(proto, (v) => v * contrast + normal() * noise);
    samples.push({ image: { dtype: 'float32', shape: [1, 3, CNN_SIZE, CNN_SIZE], data } });
    labels.push(label);
  }
  return { samples, labels };
}

function featureGraph(seed: number): { nodes: NodeSpec[]; initializers: InitializerSpec[] } {
  const rand = seededRandom(seed);
  const nodes: NodeSpec[] = [];
  const initializers: InitializerSpec[] = [];
  let x = 'image';
  let channels = 3;
  for (const [i, out] of [32, 64, 128].entries()) {
    initializers.push({
      name: `conv${i}.w`,
      dims: [out, channels, 3, 3],
      data: heWeights(rand, out * channels * 9, channels * 9),
    });
    initializers.push({
      name: `conv${i}.b`,
      dims: [out],
      data: Float32Array.from({ length: out }, () => (rand() - 0.5) * 0.1),
    });
    nodes.push({
      op: 'Conv',
      inputs: [x, `conv${i}.w`, `conv${i}.b`],
      outputs: [`conv${i}`],
      attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
    });
    x = `conv${i}`;
    if (i === 0) {
      // A BatchNorm after the first conv, as exported from training: the converter folds it.
      const bn = (name: string, f: () => number) =>
        initializers.push({ name, dims: [out], data: Float32Array.from({ length: out }, f) });
      bn('bn.scale', () => 0.8 + rand() * 0.4);
      bn('bn.bias', () => (rand() - 0.5) * 0.2);
      bn('bn.mean', () => (rand() - 0.5) * 0.2);
      bn('bn.var', () => 0.5 + rand());
      nodes.push({
        op: 'BatchNormalization',
        inputs: [x, 'bn.scale', 'bn.bias', 'bn.mean', 'bn.var'],
        outputs: ['bn'],
        attrs: { epsilon: 1e-5 },
      });
      x = 'bn';
    }
    nodes.push({ op: 'Relu', inputs: [x], outputs: [`relu${i}`] });
    nodes.push({
      op: 'MaxPool',
      inputs: [`relu${i}`],
      outputs: [`pool${i}`],
      attrs: { kernel_shape: [2, 2], strides: [2, 2] },
    });
    x = `pool${i}`;
    channels = out;
  }
  nodes.push({ op: 'Flatten', inputs: [x], outputs: ['flat'], attrs: { axis: 1 } });
  const flat = channels * 4 * 4;
  initializers.push({ name: 'fc1.w', dims: [512, flat], data: heWeights(rand, 512 * flat, flat) });
  initializers.push({
    name: 'fc1.b',
    dims: [512],
    data: Float32Array.from({ length: 512 }, () => (rand() - 0.5) * 0.1),
  });
  nodes.push({ op: 'Gemm', inputs: ['flat', 'fc1.w', 'fc1.b'], outputs: ['fc1'], attrs: { transB: 1 } });
  nodes.push({ op: 'Relu', inputs: ['fc1'], outputs: ['features'] });
  return { nodes, initializers };
}

const input = { name: 'image', shape: ['batch', 3, CNN_SIZE, CNN_SIZE] as (number | string)[] };

/** Build the classifier (ONNX bytes). Deterministic for a seed. */
export async function buildCnnClassifier(seed = 5): Promise<Uint8Array> {
  const { nodes, initializers } = featureGraph(seed);
  const features = buildModel({
    inputs: [input],
    outputs: [{ name: 'features', shape: ['batch', 512] }],
    nodes,
    initializers,
  });
  const session = await openSession(features);
  const sums = Array.from({ length: CNN_CLASSES }, () => new Float64Array(512));
  const counts = new Array<number>(CNN_CLASSES).fill(0);
  const train = cnnSamples(200, 1000);
  for (const [i, s] of train.samples.entries()) {
    const f = (await session.run(s)).features?.data as Float32Array;
    const label = train.labels[i] as number;
    counts[label] = (counts[label] as number) + 1;
    for (let k = 0; k < 512; k++)
      (sums[label] as Float64Array)[k] = ((sums[label] as Float64Array)[k] as number) + (f[k] as number);
  }
  await session.release();
  // Nearest class mean as a linear layer: logit_k = f·μ_k − |μ_k|²/2.
  const w = new Float32Array(CNN_CLASSES * 512);
  const b = new Float32Array(CNN_CLASSES);
  for (let c = 0; c < CNN_CLASSES; c++) {
    let norm = 0;
    for (let k = 0; k < 512; k++) {
      const mu = ((sums[c] as Float64Array)[k] as number) / (counts[c] as number);
      w[c * 512 + k] = mu;
      norm += mu * mu;
    }
    b[c] = -norm / 2;
  }
  return buildModel({
    inputs: [input],
    outputs: [{ name: 'logits', shape: ['batch', CNN_CLASSES] }],
    nodes: [
      ...nodes,
      { op: 'Gemm', inputs: ['features', 'fc2.w', 'fc2.b'], outputs: ['logits'], attrs: { transB: 1 } },
    ],
    initializers: [
      ...initializers,
      { name: 'fc2.w', dims: [CNN_CLASSES, 512], data: w },
      { name: 'fc2.b', dims: [CNN_CLASSES], data: b },
    ],
    producer: 'edgefleet-test-cnn',
  });
}
