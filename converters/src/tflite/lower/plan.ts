/**
 * Decisions made before any TFLite op is written: which values are aliases (Identity, Dropout),
 * which Relu/Clip fold into the op before them as a fused activation, and the int8 parameters of
 * every activation under TFLite's rules (research §3.2): asymmetric per-tensor from the calibrated
 * range, one shared scale across ops that cannot rescale (pooling, reshape, concat, pad), and the
 * fixed output scales of LOGISTIC, SOFTMAX and TANH.
 */
import type { NodeProto, TensorProto } from 'onnx-buf';
import { readFloats } from '../../onnx/tensor.ts';
import { computeScaleZp, type QuantParams } from '../../quant/params.ts';
import { ActivationFunctionType } from '../generated/schema_generated.ts';

export interface GraphFacts {
  /** Nodes in execution order. */
  nodes: NodeProto[];
  inits: Map<string, TensorProto>;
  /** Static shape (batch 1) of every activation, as observed running the model. */
  shapes: Map<string, number[]>;
  /** Calibrated [min, max] of every float activation. */
  ranges: Map<string, [number, number]>;
  inputs: string[];
  outputs: string[];
  consumers: Map<string, NodeProto[]>;
}

export interface FusedActivation {
  activation: ActivationFunctionType;
  /** The activation node's output: what the fused op writes. */
  output: string;
  node: NodeProto;
}

export interface LoweringPlan {
  alias: Map<string, string>;
  fused: Map<NodeProto, FusedActivation>;
  skipped: Set<NodeProto>;
  params: Map<string, QuantParams>;
  canonical(name: string): string;
}

/** Ops TFLite can fuse an activation into (their options carry fused_activation_function). */
const FUSES_ACTIVATION = new Set(['Conv', 'Gemm', 'MatMul', 'Add', 'Sub', 'Mul']);
/** Ops whose int8 kernel needs the same scale and zero point on input and output. */
const SAME_SCALE = new Set([
  'MaxPool',
  'AveragePool',
  'Reshape',
  'Flatten',
  'Squeeze',
  'Unsqueeze',
  'Pad',
  'Concat',
]);

/** The bounds of a Clip (opset 11+ inputs, or the older attributes); undefined bounds are open. */
export function clipBounds(node: NodeProto, inits: Map<string, TensorProto>): [number, number] {
  const bound = (i: number, attr: string, fallback: number) => {
    const name = node.input[i];
    const t = name ? inits.get(name) : undefined;
    if (t) return readFloats(t)[0] ?? fallback;
    const a = node.attribute.find((x) => x.name === attr);
    return a ? a.f : fallback;
  };
  return [bound(1, 'min', Number.NEGATIVE_INFINITY), bound(2, 'max', Number.POSITIVE_INFINITY)];
}

/** The TFLite fused activation equal to this ONNX node, or undefined when there is none. */
export function activationOf(
  node: NodeProto,
  inits: Map<string, TensorProto>,
): ActivationFunctionType | undefined {
  if (node.opType === 'Relu') return ActivationFunctionType.RELU;
  if (node.opType !== 'Clip') return undefined;
  const [lo, hi] = clipBounds(node, inits);
  if (lo === 0 && hi === 6) return ActivationFunctionType.RELU6;
  if (lo === -1 && hi === 1) return ActivationFunctionType.RELU_N1_TO_1;
  if (lo === 0 && hi === Number.POSITIVE_INFINITY) return ActivationFunctionType.RELU;
  return undefined;
}

class UnionFind {
  private readonly parent = new Map<string, string>();
  find(x: string): string {
    let root = x;
    while (this.parent.has(root) && this.parent.get(root) !== root) root = this.parent.get(root) as string;
    this.parent.set(x, root);
    return root;
  }
  union(a: string, b: string): void {
    const [ra, rb] = [this.find(a), this.find(b)];
    if (ra !== rb) this.parent.set(ra, rb);
  }
}

const FIXED: Record<string, QuantParams> = {
  Sigmoid: { scale: 1 / 256, zeroPoint: -128 },
  Softmax: { scale: 1 / 256, zeroPoint: -128 },
  Tanh: { scale: 1 / 128, zeroPoint: 0 },
};

/** Plan aliases, fusions and activation parameters for the graph. */
export function planLowering(f: GraphFacts): LoweringPlan {
  const alias = new Map<string, string>();
  const skipped = new Set<NodeProto>();
  const canonical = (name: string): string => {
    let n = name;
    while (alias.has(n)) n = alias.get(n) as string;
    return n;
  };
  for (const n of f.nodes)
    if ((n.opType === 'Identity' || n.opType === 'Dropout') && n.input[0] && n.output[0]) {
      alias.set(n.output[0], n.input[0]);
      skipped.add(n);
    }

  const producers = new Map<string, NodeProto>();
  for (const n of f.nodes) for (const o of n.output) if (o) producers.set(o, n);
  const outputs = new Set(f.outputs.map(canonical));
  const fused = new Map<NodeProto, FusedActivation>();
  for (const n of f.nodes) {
    const act = activationOf(n, f.inits);
    const x = n.input[0] ? canonical(n.input[0]) : undefined;
    const producer = x ? producers.get(x) : undefined;
    if (act === undefined || !x || !producer || !FUSES_ACTIVATION.has(producer.opType)) continue;
    const readers = (f.consumers.get(x) ?? []).filter((c) => !skipped.has(c));
    if (readers.length !== 1 || outputs.has(x) || fused.has(producer)) continue;
    fused.set(producer, { activation: act, output: n.output[0] as string, node: n });
    skipped.add(n);
  }

  const groups = new UnionFind();
  const fixed = new Map<string, QuantParams>();
  for (const n of f.nodes) {
    if (skipped.has(n)) continue;
    const out = fused.get(n)?.output ?? (n.output[0] as string);
    const fixedParams = FIXED[n.opType];
    if (fixedParams) fixed.set(out, fixedParams);
    if (!SAME_SCALE.has(n.opType)) continue;
    const inputs = n.opType === 'Concat' ? n.input : n.input.slice(0, 1);
    for (const i of inputs) if (i && !f.inits.has(canonical(i))) groups.union(canonical(i), out);
  }

  // Each group's range is the union of its members' ranges (a fixed-scale member decides alone).
  const members = new Map<string, string[]>();
  const names = new Set([...f.inputs, ...f.nodes.flatMap((n) => n.output.filter(Boolean))].map(canonical));
  for (const name of names) {
    const root = groups.find(name);
    members.set(root, [...(members.get(root) ?? []), name]);
  }
  const params = new Map<string, QuantParams>();
  for (const list of members.values()) {
    const fixedOne = list.map((m) => fixed.get(m)).find((p) => p !== undefined);
    let lo = 0;
    let hi = 0;
    for (const m of list) {
      const r = f.ranges.get(m);
      if (r) [lo, hi] = [Math.min(lo, r[0]), Math.max(hi, r[1])];
    }
    const p = fixedOne ?? computeScaleZp(lo, hi, -128, 127);
    for (const m of list) params.set(m, p);
  }
  return { alias, fused, skipped, params, canonical };
}
