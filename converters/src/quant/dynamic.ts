/**
 * int8 dynamic quantization (onnxruntime's `quantize_dynamic`, IntegerOps): activations are
 * quantized at run time to uint8 by DynamicQuantizeLinear, weights stored int8 per column, and
 * MatMulInteger → Cast → Mul rescales; ORT fuses that into DynamicQuantizeMatMul. Unlike ORT we also
 * take Gemm (a Linear layer) by pre-transposing its weight and adding the bias after.
 * Conv stays float here: dynamic mode is meant for transformer/RNN-style MatMul models.
 */
import type { ModelProto } from 'onnx-buf';
import {
  attrFloat,
  attrInt,
  type GraphProto,
  makeNode,
  NameScope,
  type NodeProto,
  pruneUnused,
  topoSort,
} from '../onnx/graph.ts';
import type { ValueType } from '../onnx/probe.ts';
import { DT, floatTensor, makeTensor, readFloats } from '../onnx/tensor.ts';
import { quantizeWeight } from './params.ts';

export interface DynamicResult {
  quantizedNodes: string[];
  keptFloat: Map<string, number>;
}

function transpose2d(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c] as number;
  return out;
}

/** Rewrite MatMul/Gemm with constant 2-D weights into the dynamic int8 pattern, in place. */
export function applyDynamic(
  model: ModelProto,
  types: Map<string, ValueType>,
  options: { reduceRange?: boolean } = {},
): DynamicResult {
  const graph = model.graph as GraphProto;
  const names = new NameScope(model);
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const result: DynamicResult = { quantizedNodes: [], keptFloat: new Map() };
  const dynamicInputs = new Map<string, [string, string, string]>();
  const replaced = new Map<NodeProto, NodeProto[]>();
  for (const [index, n] of graph.node.entries()) {
    const w = inits.get(n.input[1] ?? '');
    const a = n.input[0] ?? '';
    const gemmOk =
      n.opType === 'Gemm' &&
      attrInt(n, 'transA', 0) === 0 &&
      attrFloat(n, 'alpha', 1) === 1 &&
      (attrFloat(n, 'beta', 1) === 1 || !n.input[2]);
    const c = n.opType === 'Gemm' && n.input[2] ? inits.get(n.input[2]) : undefined;
    const eligible =
      n.domain === '' &&
      (n.opType === 'MatMul' || (gemmOk && (!n.input[2] || c))) &&
      w?.dataType === DT.FLOAT &&
      w.dims.length === 2 &&
      types.get(a)?.dtype === 'float32' &&
      (types.get(a)?.shape?.length ?? 0) >= 2;
    if (!eligible || !w) {
      if (['MatMul', 'Gemm', 'Conv'].includes(n.opType))
        result.keptFloat.set(n.opType, (result.keptFloat.get(n.opType) ?? 0) + 1);
      continue;
    }
    const [rows, cols] = w.dims.map(Number) as [number, number];
    const transB = n.opType === 'Gemm' && attrInt(n, 'transB', 0) === 1;
    const kn = transB ? transpose2d(readFloats(w), rows, cols) : readFloats(w);
    const [k, cols2] = transB ? [cols, rows] : [rows, cols];
    const q = quantizeWeight(kn, [k, cols2], {
      type: 'int8',
      axis: 1,
      reduceRange: options.reduceRange ?? false,
    });
    const base = w.name;
    const wq = names.fresh(`${base}_quantized`);
    const ws = names.fresh(`${base}_scale`);
    const wz = names.fresh(`${base}_zero_point`);
    graph.initializer.push(
      makeTensor(wq, [k, cols2], DT.INT8, q.data),
      floatTensor(ws, [cols2], q.scales),
      makeTensor(wz, [cols2], DT.INT8, q.zeroPoints),
    );
    const nodes: NodeProto[] = [];
    let dq = dynamicInputs.get(a);
    if (!dq) {
      dq = [names.fresh(`${a}_quantized`), names.fresh(`${a}_scale`), names.fresh(`${a}_zero_point`)];
      nodes.push(
        makeNode('DynamicQuantizeLinear', [a], dq, { name: names.fresh(`${a}_DynamicQuantizeLinear`) }),
      );
      dynamicInputs.set(a, dq);
    }
    const label = n.name || `${n.opType}#${index}`;
    const y = n.output[0] as string;
    const int32 = names.fresh(`${label}_MatMulInteger_Output`);
    const asFloat = names.fresh(`${label}_Cast_Output`);
    const scale = names.fresh(`${label}_scale`);
    const scaled = c ? names.fresh(`${label}_scaled`) : y;
    nodes.push(
      makeNode('MatMulInteger', [dq[0], wq, dq[2], wz], [int32], {
        name: names.fresh(`${label}_MatMulInteger`),
      }),
      makeNode('Cast', [int32], [asFloat], { name: names.fresh(`${label}_Cast`), attrs: { to: DT.FLOAT } }),
      makeNode('Mul', [dq[1], ws], [scale], { name: names.fresh(`${label}_scale_Mul`) }),
      makeNode('Mul', [asFloat, scale], [scaled], { name: names.fresh(`${label}_output_Mul`) }),
    );
    if (c) nodes.push(makeNode('Add', [scaled, c.name], [y], { name: names.fresh(`${label}_bias_Add`) }));
    replaced.set(n, nodes);
    result.quantizedNodes.push(label);
  }
  graph.node = graph.node.flatMap((n) => replaced.get(n) ?? [n]);
  topoSort(graph);
  pruneUnused(graph);
  return result;
}
