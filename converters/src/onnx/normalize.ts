/**
 * Canonical form before the int8 passes (what onnxruntime's `quant_pre_process` achieves):
 * Constant weights become initializers, old-IR inputs stop shadowing initializers, the opset is
 * raised to 13, and inference-mode BatchNormalization after a Conv is folded into its weights.
 */
import type { ModelProto } from 'onnx-buf';
import {
  attrFloat,
  consumersOf,
  type GraphProto,
  hoistConstants,
  type NodeProto,
  opsetOf,
  topoSort,
  unshadowInitializers,
  visitGraphs,
} from './graph.ts';
import { parseOnnx, serializeOnnx } from './io.ts';
import { declaredRanks, upgradeOpset } from './opset.ts';
import { probeTypes, type ValueType } from './probe.ts';
import { floatTensor, readFloats } from './tensor.ts';

export interface NormalizedModel {
  model: ModelProto;
  /** Types and shapes of main-graph values after normalisation. */
  types: Map<string, ValueType>;
  /** What was changed, for the conversion report. */
  notes: string[];
}

/** A deep copy through the wire format (exact, and independent of the caller's objects). */
export const cloneModel = (model: ModelProto): ModelProto => parseOnnx(serializeOnnx(model));

/**
 * The model onnxruntime can load: the source itself, or, for opsets older than ORT's minimum (7),
 * a copy raised to opset 13 (refused with the op named when that changes meaning).
 */
export function runnableModel(source: ModelProto): { model: ModelProto; note?: string } {
  const from = opsetOf(source, '') ?? 1;
  if (from >= 7) return { model: source };
  const model = cloneModel(source);
  const declared = declaredRanks(model);
  unshadowInitializers(model.graph as GraphProto); // IR 3 listed weights as inputs; IR 7 need not
  upgradeOpset(model, (name) => declared.get(name));
  return { model, note: `opset ${from} is older than onnxruntime runs (7): raised to 13 for every artifact` };
}

/** Normalise a copy of `source` for quantization. */
export async function normalizeForQuantization(source: ModelProto): Promise<NormalizedModel> {
  const model = cloneModel(source);
  const graph = model.graph as GraphProto;
  const notes: string[] = [];
  let hoisted = 0;
  visitGraphs(graph, (g) => {
    hoisted += hoistConstants(g);
  });
  if (hoisted) notes.push(`${hoisted} Constant node(s) turned into initializers`);
  const shadowed = graph.input.length;
  unshadowInitializers(graph);
  if (graph.input.length !== shadowed)
    notes.push(`${shadowed - graph.input.length} initializer(s) no longer listed as graph inputs`);
  const declared = declaredRanks(model);
  let types = await probeTypes(model);
  const upgrade = upgradeOpset(model, (name) => types.get(name)?.shape?.length ?? declared.get(name));
  if (upgrade.to !== upgrade.from) notes.push(`opset raised ${upgrade.from} → ${upgrade.to}`);
  const transposed = foldConstantTransposes(graph);
  if (transposed) notes.push(`${transposed} Transpose(s) of weights precomputed`);
  const folded = foldBatchNorms(graph);
  if (folded) notes.push(`${folded} BatchNormalization node(s) folded into the preceding Conv`);
  topoSort(graph);
  if (upgrade.to !== upgrade.from || folded || transposed) types = await probeTypes(model);
  return { model, types, notes };
}

function initializerMap(graph: GraphProto) {
  return new Map(graph.initializer.map((t) => [t.name, t]));
}

/** Fold `Conv → BatchNormalization` (Conv output read only by the BN) into the Conv's weights. */
export function foldBatchNorms(graph: GraphProto): number {
  const inits = initializerMap(graph);
  const consumers = consumersOf(graph);
  const outputs = new Set(graph.output.map((o) => o.name));
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) producer.set(o, n);
  const removed = new Set<NodeProto>();
  for (const bn of graph.node) {
    if (bn.opType !== 'BatchNormalization' || bn.output.filter((o) => o).length !== 1) continue;
    const x = bn.input[0] as string;
    const conv = producer.get(x);
    if (conv?.opType !== 'Conv' || outputs.has(x) || consumers.get(x)?.length !== 1) continue;
    const w = inits.get(conv.input[1] ?? '');
    const params = bn.input.slice(1, 5).map((n) => inits.get(n));
    if (!w || params.some((p) => !p) || (consumers.get(w.name)?.length ?? 0) !== 1) continue;
    const biasInit = conv.input[2] ? inits.get(conv.input[2]) : undefined;
    if (conv.input[2] && (!biasInit || (consumers.get(biasInit.name)?.length ?? 0) !== 1)) continue;
    const [gamma, beta, mean, variance] = params.map((p) =>
      readFloats(p as NonNullable<typeof p>),
    ) as Float32Array[];
    const eps = attrFloat(bn, 'epsilon', 1e-5);
    const weights = readFloats(w);
    const channels = Number(w.dims[0]);
    if ([gamma, beta, mean, variance].some((a) => a?.length !== channels)) continue;
    const per = weights.length / channels;
    const bias = biasInit ? readFloats(biasInit) : new Float32Array(channels);
    const newBias = new Float32Array(channels);
    for (let c = 0; c < channels; c++) {
      const k = (gamma?.[c] as number) / Math.sqrt((variance?.[c] as number) + eps);
      for (let i = 0; i < per; i++) weights[c * per + i] = (weights[c * per + i] as number) * k;
      newBias[c] = ((bias[c] as number) - (mean?.[c] as number)) * k + (beta?.[c] as number);
    }
    w.rawData = floatTensor(w.name, [], weights).rawData;
    w.floatData = [];
    w.dataType = 1;
    const biasName = biasInit?.name ?? `${w.name}_folded_bias`;
    const b = floatTensor(biasName, [channels], newBias);
    graph.initializer = graph.initializer.filter((t) => t.name !== biasName);
    graph.initializer.push(b);
    conv.input = [conv.input[0] as string, w.name, biasName];
    conv.output = [bn.output[0] as string];
    removed.add(bn);
  }
  graph.node = graph.node.filter((n) => !removed.has(n));
  return removed.size;
}

/** Transpose `values` of shape `dims` by `perm` (ONNX Transpose semantics). */
function transposeValues(values: Float32Array, dims: number[], perm: number[]): Float32Array {
  const rank = dims.length;
  const strides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) strides[i] = (strides[i + 1] as number) * (dims[i + 1] as number);
  const outDims = perm.map((p) => dims[p] as number);
  const out = new Float32Array(values.length);
  const index = new Array<number>(rank).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let k = 0; k < rank; k++) src += (index[k] as number) * (strides[perm[k] as number] as number);
    out[o] = values[src] as number;
    for (let k = rank - 1; k >= 0; k--) {
      index[k] = (index[k] as number) + 1;
      if ((index[k] as number) < (outDims[k] as number)) break;
      index[k] = 0;
    }
  }
  return out;
}

/**
 * Precompute `Transpose(weight)` (PyTorch exports Linear without bias as Transpose → MatMul), so
 * the MatMul sees a constant weight it can quantize.
 */
export function foldConstantTransposes(graph: GraphProto): number {
  const inits = initializerMap(graph);
  const consumers = consumersOf(graph);
  const outputs = new Set(graph.output.map((o) => o.name));
  const removed = new Set<NodeProto>();
  for (const n of graph.node) {
    const w = inits.get(n.input[0] ?? '');
    const out = n.output[0];
    if (n.opType !== 'Transpose' || n.domain !== '' || !w || w.dataType !== 1 || !out || outputs.has(out))
      continue;
    if ((consumers.get(w.name)?.length ?? 0) !== 1) continue;
    const dims = w.dims.map(Number);
    const perm =
      n.attribute.find((a) => a.name === 'perm')?.ints.map(Number) ?? dims.map((_, i) => dims.length - 1 - i);
    if (perm.length !== dims.length) continue;
    const t = floatTensor(
      out,
      perm.map((p) => dims[p] as number),
      transposeValues(readFloats(w), dims, perm),
    );
    graph.initializer = graph.initializer.filter((x) => x !== w);
    graph.initializer.push(t);
    removed.add(n);
  }
  graph.node = graph.node.filter((n) => !removed.has(n));
  return removed.size;
}
