/**
 * int8 weight-only QDQ: Conv/Gemm/MatMul weights stored int8 per channel behind a DequantizeLinear;
 * activations stay float. No calibration, runs everywhere (WebGPU included), ~4× smaller weights.
 * Recurses into If/Loop/Scan bodies, so weights that live in subgraphs shrink too.
 */
import type { ModelProto } from 'onnx-buf';
import {
  type GraphProto,
  NameScope,
  type NodeProto,
  pruneUnused,
  readsOf,
  subgraphsOf,
  topoSort,
} from '../onnx/graph.ts';
import { DT, readFloats } from '../onnx/tensor.ts';
import { addWeightDq, weightAxis } from './qdq.ts';

export interface WeightOnlyResult {
  quantizedNodes: string[];
  weightCount: number;
}

/** Quantize the weights of every Conv/Gemm/MatMul whose weight is a local float initializer. */
export function applyWeightOnly(model: ModelProto, options: { perChannel?: boolean } = {}): WeightOnlyResult {
  const names = new NameScope(model);
  const result: WeightOnlyResult = { quantizedNodes: [], weightCount: 0 };
  const visit = (graph: GraphProto, path: string) => {
    const inits = new Map(graph.initializer.map((t) => [t.name, t]));
    const cache = new Map<string, string>();
    const added: NodeProto[] = [];
    for (const [index, n] of graph.node.entries()) {
      for (const g of subgraphsOf(n)) visit(g, `${path}${n.name || n.opType}/`);
      if (n.domain !== '' || !['Conv', 'Gemm', 'MatMul'].includes(n.opType)) continue;
      const w = inits.get(n.input[1] ?? '');
      if (!w || w.dataType !== DT.FLOAT) continue;
      // MatMul weights: per column (last axis) is fine for a DQ that ORT does not fuse.
      const axis =
        n.opType === 'MatMul'
          ? options.perChannel === false || w.dims.length !== 2
            ? undefined
            : 1
          : weightAxis(n, options.perChannel ?? true);
      const key = `${w.name}|${axis}`;
      let out = cache.get(key);
      if (!out) {
        const made = addWeightDq(
          graph,
          names,
          { name: w.name, dims: w.dims.map(Number), values: readFloats(w) },
          { axis, reduceRange: false },
        );
        added.push(made.node);
        out = made.output;
        cache.set(key, out);
        result.weightCount++;
      }
      n.input[1] = out;
      result.quantizedNodes.push(`${path}${n.name || `${n.opType}#${index}`}`);
    }
    graph.node.push(...added);
    topoSort(graph);
    if (path === '') pruneUnused(graph);
    else {
      // In a subgraph, drop only the float weights replaced here (others may be read from deeper scopes).
      const replaced = new Set([...cache.keys()].map((k) => k.slice(0, k.lastIndexOf('|'))));
      const reads = new Set(graph.node.flatMap(readsOf));
      graph.initializer = graph.initializer.filter((t) => !replaced.has(t.name) || reads.has(t.name));
    }
  };
  visit(model.graph as GraphProto, '');
  return result;
}
