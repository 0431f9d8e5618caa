/**
 * A MobileNet v1 edge image classifier built in code with the converters' ONNX builder (nothing can be
 * downloaded here), the architecture of the published `mobilenet_v1_1.0_224`: a stride-2 3×3 stem, 13
 * depthwise-separable blocks (3×3 depthwise + 1×1 pointwise, batch norm folded into biases, ReLU),
 * global average pooling and a 1000-way softmax head. At width 1.0 and 224×224: 4.2 M parameters
 * and about 570 M multiply-adds per image, so compute, not the request, dominates its latency.
 * Seeded He-initialised weights: the outputs mean nothing, the work is real.
 */
import type { InitializerSpec, NodeSpec } from '@edgefleet/converters';

export const MOBILENET_SIZE = 224;
export const MOBILENET_CLASSES = 1000;

export async function buildMobileNet(seed = 11, alpha = 1): Promise<Uint8Array> {
  const { buildModel, seededRandom } = await import('@edgefleet/converters');
  const rand = seededRandom(seed);
  const normal = () => Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) * Math.cos(2 * Math.PI * rand());
  const nodes: NodeSpec[] = [];
  const initializers: InitializerSpec[] = [];
  let x = 'image';
  let n = 0;
  const conv = (inC: number, outC: number, kernel: number, stride: number, group: number) => {
    const id = n++;
    const fanIn = (inC / group) * kernel * kernel;
    const scale = Math.sqrt(2 / fanIn);
    initializers.push({
      name: `c${id}.w`,
      dims: [outC, inC / group, kernel, kernel],
      data: Float32Array.from({ length: outC * fanIn }, () => normal() * scale),
    });
    initializers.push({
      name: `c${id}.b`,
      dims: [outC],
      data: Float32Array.from({ length: outC }, () => (rand() - 0.5) * 0.1),
    });
    const pad = (kernel - 1) / 2;
    nodes.push({
      op: 'Conv',
      inputs: [x, `c${id}.w`, `c${id}.b`],
      outputs: [`c${id}`],
      attrs: { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad], group },
    });
    nodes.push({ op: 'Relu', inputs: [`c${id}`], outputs: [`r${id}`] });
    x = `r${id}`;
  };
  const ch = (c: number) => Math.round(c * alpha);
  conv(3, ch(32), 3, 2, 1);
  // [pointwise output channels, depthwise stride] of MobileNet v1's 13 separable blocks.
  const blocks: [number, number][] = [
    [64, 1],
    [128, 2],
    [128, 1],
    [256, 2],
    [256, 1],
    [512, 2],
    [512, 1],
    [512, 1],
    [512, 1],
    [512, 1],
    [512, 1],
    [1024, 2],
    [1024, 1],
  ];
  let channels = ch(32);
  for (const [out, stride] of blocks) {
    conv(channels, channels, 3, stride, channels);
    conv(channels, ch(out), 1, 1, 1);
    channels = ch(out);
  }
  nodes.push({ op: 'GlobalAveragePool', inputs: [x], outputs: ['pooled'] });
  nodes.push({ op: 'Flatten', inputs: ['pooled'], outputs: ['features'], attrs: { axis: 1 } });
  const fcScale = Math.sqrt(1 / channels);
  initializers.push({
    name: 'fc.w',
    dims: [MOBILENET_CLASSES, channels],
    data: Float32Array.from({ length: MOBILENET_CLASSES * channels }, () => normal() * fcScale),
  });
  initializers.push({ name: 'fc.b', dims: [MOBILENET_CLASSES], data: new Float32Array(MOBILENET_CLASSES) });
  nodes.push({
    op: 'Gemm',
    inputs: ['features', 'fc.w', 'fc.b'],
    outputs: ['logits'],
    attrs: { transB: 1 },
  });
  nodes.push({ op: 'Softmax', inputs: ['logits'], outputs: ['probabilities'], attrs: { axis: 1 } });
  return buildModel({
    inputs: [{ name: 'image', shape: [1, 3, MOBILENET_SIZE, MOBILENET_SIZE] }],
    outputs: [{ name: 'probabilities', shape: [1, MOBILENET_CLASSES] }],
    nodes,
    initializers,
    producer: 'edgefleet-bench-mobilenet',
  });
}

/** One input image: seeded values in [-1, 1], as a normalised picture would be. */
export function mobileNetInput(seed = 3): { data: Float32Array; shape: number[] } {
  let a = seed >>> 0;
  const data = new Float32Array(3 * MOBILENET_SIZE * MOBILENET_SIZE);
  for (let i = 0; i < data.length; i++) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    data[i] = (a / 4294967296) * 2 - 1;
  }
  return { data, shape: [1, 3, MOBILENET_SIZE, MOBILENET_SIZE] };
}
