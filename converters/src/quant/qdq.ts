/**
 * Static int8 QDQ rewrite: activations get QuantizeLinear → DequantizeLinear pairs with calibrated
 * parameters; weights are stored int8 (per channel) behind a lone DequantizeLinear; Conv/Gemm biases
 * become int32 with scale input_scale × weight_scale and no zero point. That is the exact shape
 * onnxruntime's QDQ selectors need to fuse into QLinearConv / QGemm / QLinearMatMul (research §1.3).
 */
import type { ModelProto } from 'onnx-buf';
import {
  attrInt,
  consumersOf,
  type GraphProto,
  makeNode,
  NameScope,
  type NodeProto,
  pruneUnused,
  readsOf,
  renameInputs,
  subgraphsOf,
  topoSort,
} from '../onnx/graph.ts';
import { DT, floatTensor, makeTensor, readFloats } from '../onnx/tensor.ts';
import type { Ranges } from './calibrate.ts';
import { computeScaleZp, type QuantParams, qRange, quantizeBias, quantizeWeight } from './params.ts';
import { type QuantPlan, WEIGHTED_OPS } from './plan.ts';

export interface StaticQdqOptions {
  perChannel?: boolean;
  /** 7-bit weights (−64..64): avoids int16 saturation on x86 without VNNI (research §1.8). */
  reduceRange?: boolean;
  symmetricActivations?: boolean;
}

export interface StaticQdqResult {
  /** Weighted nodes whose weights are int8 (name or op#index). */
  quantizedNodes: string[];
  activationCount: number;
  weightCount: number;
  biasCount: number;
  clippedBiasValues: number;
}

/** Per-channel axis of the weight for a weighted node, or undefined for per-tensor. */
export function weightAxis(node: NodeProto, perChannel: boolean): number | undefined {
  if (!perChannel) return undefined;
  if (node.opType === 'Conv') return 0;
  if (node.opType === 'Gemm') return attrInt(node, 'transB', 0) ? 0 : 1;
  // MatMul [K, N]: one scale per output column; ORT still fuses it into QLinearMatMul.
  return node.opType === 'MatMul' ? 1 : undefined;
}

/** Add an int8 weight + scale + zero point and a DequantizeLinear reading them; returns its output. */
export function addWeightDq(
  graph: GraphProto,
  names: NameScope,
  weight: { name: string; dims: number[]; values: Float32Array },
  options: { axis: number | undefined; reduceRange: boolean },
): { output: string; scales: Float32Array; node: NodeProto } {
  const q = quantizeWeight(weight.values, weight.dims, {
    type: 'int8',
    axis: options.axis,
    reduceRange: options.reduceRange,
  });
  const base = weight.name;
  const qName = names.fresh(`${base}_quantized`);
  const sName = names.fresh(`${base}_scale`);
  const zName = names.fresh(`${base}_zero_point`);
  const perChannel = options.axis !== undefined;
  graph.initializer.push(
    makeTensor(qName, weight.dims, DT.INT8, q.data),
    floatTensor(sName, perChannel ? [q.scales.length] : [], q.scales),
    makeTensor(zName, perChannel ? [q.zeroPoints.length] : [], DT.INT8, q.zeroPoints),
  );
  const output = names.fresh(`${base}_DequantizeLinear_Output`);
  const node = makeNode('DequantizeLinear', [qName, sName, zName], [output], {
    name: names.fresh(`${base}_DequantizeLinear`),
    ...(perChannel ? { attrs: { axis: options.axis as number } } : {}),
  });
  return { output, scales: q.scales, node };
}

/** Rewrite the planned graph in place with Q/DQ nodes. */
export function applyStaticQdq(
  model: ModelProto,
  plan: QuantPlan,
  ranges: Ranges,
  options: StaticQdqOptions = {},
): StaticQdqResult {
  const graph = model.graph as GraphProto;
  const names = new NameScope(model);
  const [qmin, qmax] = qRange('int8', { symmetric: options.symmetricActivations ?? false });
  const params = new Map<string, QuantParams>();
  for (const name of plan.activations) {
    const source = plan.sameScaleAs.get(name);
    const p = source ? params.get(source) : undefined;
    const [lo, hi] = ranges.get(name) ?? [0, 0];
    params.set(name, p ?? computeScaleZp(lo, hi, qmin, qmax, options.symmetricActivations ?? false));
  }
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const added: NodeProto[] = [];
  const result: StaticQdqResult = {
    quantizedNodes: [],
    activationCount: 0,
    weightCount: 0,
    biasCount: 0,
    clippedBiasValues: 0,
  };

  // Weights and biases first, while node inputs still name the float activations.
  const weightCache = new Map<string, { output: string; scales: Float32Array }>();
  for (const [index, n] of graph.node.entries()) {
    if (!plan.nodes.has(n) || !WEIGHTED_OPS.has(n.opType)) continue;
    const w = inits.get(n.input[1] ?? '');
    if (!w) continue; // MatMul of two activations: both are quantized as activations
    const axis =
      n.opType === 'MatMul' && w.dims.length !== 2 ? undefined : weightAxis(n, options.perChannel ?? true);
    const key = `${w.name}|${axis}`;
    let dq = weightCache.get(key);
    if (!dq) {
      const made = addWeightDq(
        graph,
        names,
        { name: w.name, dims: w.dims.map(Number), values: readFloats(w) },
        { axis, reduceRange: options.reduceRange ?? false },
      );
      added.push(made.node);
      dq = { output: made.output, scales: made.scales };
      weightCache.set(key, dq);
      result.weightCount++;
    }
    n.input[1] = dq.output;
    result.quantizedNodes.push(n.name || `${n.opType}#${index}`);
    const bias = inits.get(n.input[2] ?? '');
    const inputParams = params.get(n.input[0] ?? '');
    const channels = axis === undefined ? undefined : (w.dims[axis] as bigint);
    if (!bias || !inputParams || n.opType === 'MatMul') continue;
    const b = readFloats(bias);
    if (bias.dims.length !== 1 || (channels !== undefined && b.length !== Number(channels))) continue;
    const qb = quantizeBias(b, inputParams.scale, dq.scales);
    result.clippedBiasValues += qb.clipped;
    const qName = names.fresh(`${bias.name}_quantized`);
    const sName = names.fresh(`${bias.name}_scale`);
    graph.initializer.push(
      makeTensor(qName, [b.length], DT.INT32, qb.data),
      floatTensor(sName, [b.length], qb.scales),
    );
    const out = names.fresh(`${bias.name}_DequantizeLinear_Output`);
    // int32 DequantizeLinear without a zero point: WebGPU rejects one (research §8).
    added.push(
      makeNode('DequantizeLinear', [qName, sName], [out], {
        name: names.fresh(`${bias.name}_DequantizeLinear`),
        attrs: { axis: 0 },
      }),
    );
    n.input[2] = out;
    result.biasCount++;
  }

  // Activations: producer → Q → DQ → every reader. Graph outputs keep their name on the DQ side.
  const consumers = consumersOf(graph);
  const graphOutputs = new Set(graph.output.map((o) => o.name));
  for (const name of plan.activations) {
    const p = params.get(name) as QuantParams;
    const readers = consumers.get(name) ?? [];
    if (readers.some((r) => subgraphsOf(r).length > 0 && !r.input.includes(name))) continue; // outer-scope read
    const sName = names.fresh(`${name}_scale`);
    const zName = names.fresh(`${name}_zero_point`);
    graph.initializer.push(
      floatTensor(sName, [], Float32Array.of(p.scale)),
      makeTensor(zName, [], DT.INT8, Int8Array.of(p.zeroPoint)),
    );
    const quantized = names.fresh(`${name}_QuantizeLinear_Output`);
    let qInput = name;
    let dqOutput: string;
    if (graphOutputs.has(name)) {
      qInput = names.fresh(`${name}_QuantizeLinear_Input`);
      for (const n of graph.node) n.output = n.output.map((o) => (o === name ? qInput : o));
      dqOutput = name;
    } else {
      dqOutput = names.fresh(`${name}_DequantizeLinear_Output`);
      renameInputs(readers, name, dqOutput);
    }
    added.push(
      makeNode('QuantizeLinear', [qInput, sName, zName], [quantized], {
        name: names.fresh(`${name}_QuantizeLinear`),
      }),
      makeNode('DequantizeLinear', [quantized, sName, zName], [dqOutput], {
        name: names.fresh(`${name}_DequantizeLinear`),
      }),
    );
    result.activationCount++;
  }
  graph.node.push(...added);
  topoSort(graph);
  pruneUnused(graph);
  // Keep only value_info of values that still exist (renamed tensors would carry stale types).
  const live = new Set(graph.node.flatMap((n) => [...n.output, ...readsOf(n)]));
  graph.valueInfo = graph.valueInfo.filter((v) => live.has(v.name) && !plan.activations.includes(v.name));
  return result;
}
