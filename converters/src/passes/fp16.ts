/**
 * fp16 conversion after onnxruntime's `transformers/float16.py`: float I/O kept (Casts at the
 * edges), weights clamped into fp16 range, Cast/Constant targets switched, subgraphs recursed. Ops
 * known to overflow or lack fp16 kernels stay fp32 with Casts around them, and so does every node
 * whose observed activations come near the fp16 limit (decomposed LayerNorm, large residuals).
 */
import type { ModelProto } from 'onnx-buf';
import {
  type GraphProto,
  makeNode,
  NameScope,
  type NodeProto,
  pruneUnused,
  readsOf,
  setAttr,
  subgraphsOf,
  type TensorProto,
  topoSort,
  visitGraphs,
} from '../onnx/graph.ts';
import type { ValueType } from '../onnx/probe.ts';
import { DT, f32ToF16Bits, makeTensor, readFloats } from '../onnx/tensor.ts';

/** onnxruntime's DEFAULT_OP_BLOCK_LIST plus the overflow-prone reductions and normalisers. */
export const FP16_BLOCKED_OPS = new Set([
  ...'ArrayFeatureExtractor Binarizer CastMap CategoryMapper DictVectorizer FeatureVectorizer Imputer LabelEncoder LinearClassifier LinearRegressor Normalizer OneHotEncoder RandomUniformLike SVMClassifier SVMRegressor Scaler TreeEnsembleClassifier TreeEnsembleRegressor TreeEnsemble ZipMap NonMaxSuppression TopK RoiAlign Range CumSum Min Max Upsample'.split(
    ' ',
  ),
  // Squares and sums of activations overflow 65504 long before the activations do (research §2.4).
  ...'Pow ReduceMean ReduceSum ReduceSumSquare ReduceL2 ReduceLogSumExp Softmax LogSoftmax'.split(' '),
  // Their float side is typed by a scale input, not by the graph's float type.
  ...'QuantizeLinear DequantizeLinear DynamicQuantizeLinear'.split(' '),
]);

/** Inputs that must stay float32 whatever the node's precision (Resize roi/scales). */
const ALWAYS_FLOAT_INPUTS: Record<string, number[]> = { Resize: [1, 2] };

export interface Fp16Options {
  keepIoTypes?: boolean;
  blockedOps?: ReadonlySet<string>;
  blockedNodes?: ReadonlySet<string>;
  /** Observed activation ranges (main graph): nodes touching |x| > overflowLimit stay fp32. */
  ranges?: Map<string, [number, number]>;
  overflowLimit?: number;
}

export interface Fp16Result {
  /** Nodes kept in fp32, with why. */
  keptFp32: { node: string; op: string; reason: string }[];
  convertedTensors: number;
  castsAdded: number;
}

const MIN_POSITIVE = 5.96e-8;
const MAX_FINITE = 65504;

/** fp16 copy of a float tensor, clamped like float16.py (tiny → min positive, huge → max finite). */
function toFp16(t: TensorProto, name = t.name): TensorProto {
  const values = readFloats(t);
  const bits = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) {
    let v = values[i] as number;
    if (v > 0 && v < MIN_POSITIVE) v = MIN_POSITIVE;
    else if (v < 0 && v > -MIN_POSITIVE) v = -MIN_POSITIVE;
    else if (v > MAX_FINITE) v = MAX_FINITE;
    else if (v < -MAX_FINITE) v = -MAX_FINITE;
    bits[i] = f32ToF16Bits(v);
  }
  return makeTensor(name, t.dims.map(Number), DT.FLOAT16, bits);
}

/** Switch a non-blocked node's own float constants and target types to fp16. */
function convertNodeAttributes(n: NodeProto): number {
  let changed = 0;
  for (const a of n.attribute) {
    if (a.t && a.t.dataType === DT.FLOAT) {
      a.t = toFp16(a.t);
      changed++;
    }
    if ((a.name === 'to' || a.name === 'dtype') && Number(a.i) === DT.FLOAT && n.opType !== 'Resize') {
      a.i = BigInt(DT.FLOAT16);
      changed++;
    }
  }
  return changed;
}

function retypeValueInfos(
  values: { type?: { value: { case: string | undefined; value?: unknown } } }[],
): void {
  for (const v of values)
    if (v.type?.value.case === 'tensorType') {
      const tt = v.type.value.value as { elemType: number };
      if (tt.elemType === DT.FLOAT) tt.elemType = DT.FLOAT16;
    }
}

/** Subgraphs convert wholesale: initializers, constants, casts and declared I/O types. */
function convertSubgraph(g: GraphProto): number {
  let changed = 0;
  visitGraphs(g, (inner) => {
    changed += inner.initializer.filter((t) => t.dataType === DT.FLOAT).length;
    inner.initializer = inner.initializer.map((t) => (t.dataType === DT.FLOAT ? toFp16(t) : t));
    for (const n of inner.node) changed += convertNodeAttributes(n);
    retypeValueInfos([...inner.input, ...inner.output, ...inner.valueInfo]);
  });
  return changed;
}

function renameOuterReads(g: GraphProto, from: string, to: string): void {
  visitGraphs(g, (inner) => {
    for (const n of inner.node) n.input = n.input.map((x) => (x === from ? to : x));
  });
}

/** Convert the (normalised) model to fp16 in place. `types` are the main graph's value types. */
export function convertToFp16(
  model: ModelProto,
  types: Map<string, ValueType>,
  options: Fp16Options = {},
): Fp16Result {
  const graph = model.graph as GraphProto;
  const names = new NameScope(model);
  const keepIo = options.keepIoTypes ?? true;
  const blockedOps = options.blockedOps ?? FP16_BLOCKED_OPS;
  const limit = options.overflowLimit ?? 16384;
  const result: Fp16Result = { keptFp32: [], convertedTensors: 0, castsAdded: 0 };
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const isFloat = (name: string) =>
    inits.has(name) ? inits.get(name)?.dataType === DT.FLOAT : types.get(name)?.dtype === 'float32';
  const absmax = (name: string) => {
    const r = options.ranges?.get(name);
    return r ? Math.max(Math.abs(r[0]), Math.abs(r[1])) : 0;
  };

  const blocked = new Set<NodeProto>();
  for (const n of graph.node) {
    let reason: string | undefined;
    if (n.domain === 'ai.onnx.ml') reason = 'ai.onnx.ml op';
    else if (blockedOps.has(n.opType)) reason = 'op kept in fp32 (overflow-prone or no fp16 kernel)';
    else if (options.blockedNodes?.has(n.name)) reason = 'requested';
    else {
      const big = [...n.input, ...n.output].find((x) => x && !inits.has(x) && absmax(x) > limit);
      if (big) reason = `activation "${big}" reaches ${absmax(big).toPrecision(3)} (fp16 overflows at 65504)`;
    }
    if (reason) {
      blocked.add(n);
      result.keptFp32.push({ node: n.name, op: n.opType, reason });
    }
  }

  // Float outputs leave through a Cast back to float32; the producer writes an fp16 twin.
  const edgeCasts = new Set<NodeProto>();
  const producers = new Map(graph.node.flatMap((n) => n.output.map((o) => [o, n] as const)));
  for (const out of graph.output) {
    const p = producers.get(out.name);
    if (!isFloat(out.name) || !p || blocked.has(p)) continue;
    if (!keepIo) {
      retypeValueInfos([out]);
      continue;
    }
    const twin = names.fresh(`${out.name}_fp16`);
    p.output = p.output.map((o) => (o === out.name ? twin : o));
    for (const n of graph.node) if (n !== p) n.input = n.input.map((x) => (x === out.name ? twin : x));
    for (const n of graph.node) for (const g of subgraphsOf(n)) renameOuterReads(g, out.name, twin);
    const cast = makeNode('Cast', [twin], [out.name], {
      name: names.fresh(`${out.name}_to_float32`),
      attrs: { to: DT.FLOAT },
    });
    edgeCasts.add(cast);
    graph.node.push(cast);
    types.set(twin, { dtype: 'float32', shape: types.get(out.name)?.shape });
    result.castsAdded++;
  }
  if (!keepIo) retypeValueInfos(graph.input);

  // Precision of every float value as the new graph produces it.
  const precision = new Map<string, 'fp16' | 'fp32'>();
  for (const v of graph.input) if (isFloat(v.name)) precision.set(v.name, keepIo ? 'fp32' : 'fp16');
  const readers = new Map<string, NodeProto[]>();
  for (const n of graph.node) for (const x of n.input) readers.set(x, [...(readers.get(x) ?? []), n]);
  const initReplacements: TensorProto[] = [];
  for (const t of graph.initializer) {
    if (t.dataType !== DT.FLOAT) {
      initReplacements.push(t);
      continue;
    }
    const users = readers.get(t.name) ?? [];
    const wantsFp32 = (n: NodeProto) =>
      blocked.has(n) || (ALWAYS_FLOAT_INPUTS[n.opType] ?? []).includes(n.input.indexOf(t.name));
    const anyFp16 = users.some((n) => !wantsFp32(n)) || users.length === 0;
    if (users.every(wantsFp32) && users.length > 0) {
      initReplacements.push(t);
      precision.set(t.name, 'fp32');
      continue;
    }
    if (anyFp16 && users.some(wantsFp32)) {
      const copy = names.fresh(`${t.name}_fp32`);
      initReplacements.push(makeTensor(copy, t.dims.map(Number), DT.FLOAT, readFloats(t)));
      precision.set(copy, 'fp32');
      for (const n of users.filter(wantsFp32)) n.input = n.input.map((x) => (x === t.name ? copy : x));
    }
    initReplacements.push(toFp16(t));
    precision.set(t.name, 'fp16');
    result.convertedTensors++;
  }
  graph.initializer = initReplacements;

  const casts = new Map<string, string>();
  const castTo = (name: string, to: 'fp16' | 'fp32'): string => {
    const key = `${name}|${to}`;
    let out = casts.get(key);
    if (!out) {
      out = names.fresh(`${name}_${to === 'fp16' ? 'to_fp16' : 'to_fp32'}`);
      casts.set(key, out);
      const cast = makeNode('Cast', [name], [out], {
        name: names.fresh(`${name}_Cast_${to}`),
        attrs: { to: to === 'fp16' ? DT.FLOAT16 : DT.FLOAT },
      });
      graph.node.push(cast);
      precision.set(out, to);
      result.castsAdded++;
    }
    return out;
  };

  for (const n of [...graph.node]) {
    if (edgeCasts.has(n)) continue;
    const want = blocked.has(n) ? 'fp32' : 'fp16';
    n.input = n.input.map((x, i) => {
      if (!x || !precision.has(x)) return x;
      const needed = (ALWAYS_FLOAT_INPUTS[n.opType] ?? []).includes(i) ? 'fp32' : want;
      return precision.get(x) === needed ? x : castTo(x, needed);
    });
    const outer = new Set(readsOf(n).filter((x) => !n.input.includes(x)));
    for (const g of subgraphsOf(n)) {
      result.convertedTensors += convertSubgraph(g);
      for (const name of outer)
        if (precision.get(name) === 'fp32') renameOuterReads(g, name, castTo(name, 'fp16'));
    }
    if (!blocked.has(n)) {
      // ConstantOfShape without a value makes float32 zeros: give it an explicit fp16 zero.
      if (n.opType === 'ConstantOfShape' && !n.attribute.some((a) => a.name === 'value'))
        setAttr(n, 'value', makeTensor('', [1], DT.FLOAT16, Uint16Array.of(0)));
      result.convertedTensors += convertNodeAttributes(n);
    }
    for (const o of n.output) if (o && isFloat(o)) precision.set(o, want);
  }
  // Types changed: stale value_info would contradict them; ORT re-infers.
  graph.valueInfo = [];
  topoSort(graph);
  pruneUnused(graph);
  return result;
}
