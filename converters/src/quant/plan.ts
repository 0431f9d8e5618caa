/**
 * Which nodes of the main graph static int8 quantization wraps in Q/DQ, following onnxruntime's
 * QDQ registry: weighted ops (Conv, Gemm, MatMul), ops with their own int8 kernels, ops that keep
 * their input's scale, and removable activations (Relu/Clip folded into the previous Q's range).
 */
import type { ModelProto } from 'onnx-buf';
import { attrFloat, consumersOf, type GraphProto, type NodeProto, producersOf } from '../onnx/graph.ts';
import type { ValueType } from '../onnx/probe.ts';

/** Ops whose int8 form has weights: input 1 is the weight, input 2 the bias. */
export const WEIGHTED_OPS = new Set(['Conv', 'Gemm', 'MatMul']);
/** Ops that carry the input's quantization to the output unchanged (data movement, max). */
export const SAME_SCALE_OPS = new Set(['MaxPool', 'Reshape', 'Flatten', 'Transpose', 'Squeeze', 'Unsqueeze']);
/** Ops with their own int8 kernels (or at least exact Q/DQ semantics) and independent output scales. */
export const ACTIVATION_OPS = new Set([
  'Add',
  'Mul',
  'AveragePool',
  'GlobalAveragePool',
  'Concat',
  'Sigmoid',
  'LeakyRelu',
  'BatchNormalization',
]);
export const REMOVABLE_OPS = new Set(['Relu', 'Clip']);

export interface QuantPlan {
  /** Nodes that get Q/DQ on their float inputs and outputs. */
  nodes: Set<NodeProto>;
  /** Activation tensors to quantize (calibrate these). */
  activations: string[];
  /** Output tensor → input tensor whose parameters it reuses. */
  sameScaleAs: Map<string, string>;
  /** Relu/Clip nodes removed; their producers now write their outputs. */
  removed: NodeProto[];
  /** Op types left in float, with counts, for the report. */
  keptFloat: Map<string, number>;
}

const isFloat = (types: Map<string, ValueType>, name: string) => types.get(name)?.dtype === 'float32';

/**
 * Plan the static QDQ pass over `model` (normalised). Mutates the graph only to remove the Relu/Clip
 * nodes that the preceding quantized node absorbs.
 */
export function planStaticQuantization(
  model: ModelProto,
  types: Map<string, ValueType>,
  options: { excludeNodes?: ReadonlySet<string>; excludeOps?: ReadonlySet<string> } = {},
): QuantPlan {
  const graph = model.graph as GraphProto;
  const inits = new Set(graph.initializer.map((t) => t.name));
  const nodes = new Set<NodeProto>();
  const keptFloat = new Map<string, number>();
  for (const n of graph.node) {
    const excluded = options.excludeNodes?.has(n.name) || options.excludeOps?.has(n.opType);
    const x = n.input[0] ?? '';
    let ok = !excluded && n.domain === '' && isFloat(types, x);
    if (ok && WEIGHTED_OPS.has(n.opType)) {
      const w = n.input[1] ?? '';
      ok = isFloat(types, w) && (n.opType === 'MatMul' || inits.has(w));
      if (n.opType === 'Gemm' && attrFloat(n, 'beta', 1) !== 1 && n.input[2]) ok = false;
      if (n.opType === 'Conv' && n.input.length > 2 && n.input[2] && !inits.has(n.input[2])) ok = false;
    } else if (ok) {
      ok = SAME_SCALE_OPS.has(n.opType) || ACTIVATION_OPS.has(n.opType);
    }
    if (ok) nodes.add(n);
    else if (!REMOVABLE_OPS.has(n.opType)) keptFloat.set(n.opType, (keptFloat.get(n.opType) ?? 0) + 1);
  }
  // Relu/Clip right after a quantized node disappear: the Q's range [0, max] does the clamping.
  const removed: NodeProto[] = [];
  const consumers = consumersOf(graph);
  const producers = producersOf(graph);
  const graphOutputs = new Set(graph.output.map((o) => o.name));
  for (const n of graph.node) {
    if (!REMOVABLE_OPS.has(n.opType) || n.domain !== '') continue;
    const x = n.input[0] ?? '';
    const p = producers.get(x);
    const clipConst = n.input.slice(1).every((i) => i === '' || inits.has(i));
    if (p && nodes.has(p) && consumers.get(x)?.length === 1 && !graphOutputs.has(x) && clipConst) {
      p.output = p.output.map((o) => (o === x ? (n.output[0] as string) : o));
      removed.push(n);
    } else if (isFloat(types, x) && clipConst) {
      nodes.add(n); // kept, but quantized around like any activation
    } else {
      keptFloat.set(n.opType, (keptFloat.get(n.opType) ?? 0) + 1);
    }
  }
  graph.node = graph.node.filter((n) => !removed.includes(n));
  const absorbed = new Set(removed.map((n) => n.output[0] as string));
  const readers = consumersOf(graph);

  const activations: string[] = [];
  const seen = new Set<string>();
  const add = (name: string) => {
    if (name && !seen.has(name) && !inits.has(name) && isFloat(types, name)) {
      seen.add(name);
      activations.push(name);
    }
  };
  const sameScaleAs = new Map<string, string>();
  for (const n of graph.node) {
    if (!nodes.has(n)) continue;
    const dataInputs = WEIGHTED_OPS.has(n.opType)
      ? n.opType === 'MatMul'
        ? n.input.slice(0, 2)
        : n.input.slice(0, 1)
      : SAME_SCALE_OPS.has(n.opType) || n.opType === 'BatchNormalization' || REMOVABLE_OPS.has(n.opType)
        ? n.input.slice(0, 1)
        : n.input;
    for (const i of dataInputs) add(i);
    const out = n.output[0] ?? '';
    if (SAME_SCALE_OPS.has(n.opType) && seen.has(n.input[0] ?? ''))
      sameScaleAs.set(out, n.input[0] as string);
    // Gemm/MatMul have integer kernels with float output (QGemm, MatMulIntegerToFloat): when no
    // quantized node reads the result and no Relu was folded into it, skip the needless output Q.
    const floatOutput =
      (n.opType === 'Gemm' || n.opType === 'MatMul') &&
      !absorbed.has(out) &&
      !(readers.get(out) ?? []).some((r) => nodes.has(r));
    if (!floatOutput) add(out);
  }
  return { nodes, activations, sameScaleAs, removed, keptFloat };
}
