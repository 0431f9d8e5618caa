/**
 * Build small ONNX models in code: used by tests, benchmarks and the demo to make real models
 * (MLPs, CNNs) without shipping binary files.
 */
import { create } from '@bufbuild/protobuf';
import type { Dtype } from '@edgefleet/bundle';
import { AttributeProto_AttributeType, ModelProtoSchema, TensorProto_DataType } from 'onnx-buf';
import { serializeOnnx } from './io.ts';

export interface ValueSpec {
  name: string;
  dtype?: Dtype;
  /** Numbers, or strings for symbolic (dynamic) dimensions. */
  shape: (number | string)[];
}

export type AttrValue = number | number[] | string | Float32Array;

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrValue>;
  domain?: string;
  name?: string;
}

export interface InitializerSpec {
  name: string;
  dims: number[];
  data: Float32Array | BigInt64Array | Int32Array;
}

export interface ModelSpec {
  inputs: ValueSpec[];
  outputs: ValueSpec[];
  nodes: NodeSpec[];
  initializers?: InitializerSpec[];
  opset?: number;
  producer?: string;
  graphName?: string;
}

const elemTypes: Partial<Record<Dtype, TensorProto_DataType>> = {
  float32: TensorProto_DataType.FLOAT,
  float16: TensorProto_DataType.FLOAT16,
  int8: TensorProto_DataType.INT8,
  uint8: TensorProto_DataType.UINT8,
  int32: TensorProto_DataType.INT32,
  int64: TensorProto_DataType.INT64,
  bool: TensorProto_DataType.BOOL,
};

function valueInfo(v: ValueSpec) {
  return {
    name: v.name,
    type: {
      value: {
        case: 'tensorType' as const,
        value: {
          elemType: elemTypes[v.dtype ?? 'float32'] ?? TensorProto_DataType.FLOAT,
          shape: {
            dim: v.shape.map((d) => ({
              value:
                typeof d === 'number'
                  ? { case: 'dimValue' as const, value: BigInt(d) }
                  : { case: 'dimParam' as const, value: d },
            })),
          },
        },
      },
    },
  };
}

function attribute(name: string, value: AttrValue) {
  if (typeof value === 'string')
    return { name, type: AttributeProto_AttributeType.STRING, s: new TextEncoder().encode(value) };
  if (value instanceof Float32Array)
    return { name, type: AttributeProto_AttributeType.FLOATS, floats: [...value] };
  if (Array.isArray(value))
    return { name, type: AttributeProto_AttributeType.INTS, ints: value.map((v) => BigInt(v)) };
  return Number.isInteger(value)
    ? { name, type: AttributeProto_AttributeType.INT, i: BigInt(value) }
    : { name, type: AttributeProto_AttributeType.FLOAT, f: value };
}

function initializer(i: InitializerSpec) {
  const dataType =
    i.data instanceof Float32Array
      ? TensorProto_DataType.FLOAT
      : i.data instanceof BigInt64Array
        ? TensorProto_DataType.INT64
        : TensorProto_DataType.INT32;
  // Copy into a fresh buffer: a view on a pooled buffer would serialise neighbouring bytes.
  const raw = new Uint8Array(i.data.byteLength);
  raw.set(new Uint8Array(i.data.buffer, i.data.byteOffset, i.data.byteLength));
  return { name: i.name, dims: i.dims.map((d) => BigInt(d)), dataType, rawData: raw };
}

/** Serialise a model described in code. */
export function buildModel(spec: ModelSpec): Uint8Array {
  const model = create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: spec.producer ?? 'edgefleet',
    producerVersion: '0.1.0',
    opsetImport: [{ domain: '', version: BigInt(spec.opset ?? 13) }],
    graph: {
      name: spec.graphName ?? 'graph',
      input: spec.inputs.map(valueInfo),
      output: spec.outputs.map(valueInfo),
      initializer: (spec.initializers ?? []).map(initializer),
      node: spec.nodes.map((n, i) => ({
        name: n.name ?? `${n.op}_${i}`,
        opType: n.op,
        domain: n.domain ?? '',
        input: n.inputs,
        output: n.outputs,
        attribute: Object.entries(n.attrs ?? {}).map(([k, v]) => attribute(k, v)),
      })),
    },
  });
  return serializeOnnx(model);
}

/** A deterministic pseudo-random stream (mulberry32), so generated weights and inputs repeat exactly. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A dense MLP (Gemm + Relu layers, optional softmax head) with seeded weights. */
export function mlpModel(options: {
  inputs: number;
  hidden: number[];
  outputs: number;
  seed?: number;
  softmax?: boolean;
  batch?: number | string;
  /** Negate the scores: the same network with its ranking reversed (a model that always disagrees). */
  negate?: boolean;
}): Uint8Array {
  const rand = seededRandom(options.seed ?? 1);
  const sizes = [options.inputs, ...options.hidden, options.outputs];
  const nodes: NodeSpec[] = [];
  const initializers: InitializerSpec[] = [];
  let current = 'input';
  for (let layer = 0; layer < sizes.length - 1; layer++) {
    const [fanIn, fanOut] = [sizes[layer] as number, sizes[layer + 1] as number];
    const scale = Math.sqrt(2 / fanIn);
    initializers.push({
      name: `w${layer}`,
      dims: [fanIn, fanOut],
      data: Float32Array.from({ length: fanIn * fanOut }, () => (rand() * 2 - 1) * scale),
    });
    initializers.push({
      name: `b${layer}`,
      dims: [fanOut],
      data: Float32Array.from({ length: fanOut }, () => (rand() * 2 - 1) * 0.1),
    });
    const out = `h${layer}`;
    nodes.push({ op: 'Gemm', inputs: [current, `w${layer}`, `b${layer}`], outputs: [out] });
    current = out;
    if (layer < sizes.length - 2) {
      nodes.push({ op: 'Relu', inputs: [current], outputs: [`${out}_relu`] });
      current = `${out}_relu`;
    }
  }
  if (options.negate) {
    nodes.push({ op: 'Neg', inputs: [current], outputs: ['negated'] });
    current = 'negated';
  }
  nodes.push(
    options.softmax
      ? { op: 'Softmax', inputs: [current], outputs: ['output'], attrs: { axis: 1 } }
      : { op: 'Identity', inputs: [current], outputs: ['output'] },
  );
  const batch = options.batch ?? 1;
  return buildModel({
    inputs: [{ name: 'input', shape: [batch, options.inputs] }],
    outputs: [{ name: 'output', shape: [batch, options.outputs] }],
    nodes,
    initializers,
  });
}
