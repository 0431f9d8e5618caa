/** What an ONNX model is: opsets, I/O with shapes and types, op histogram, parameter count. */
import type { Dtype, TensorSpec } from '@edgefleet/bundle';
import type { ModelProto } from 'onnx-buf';
import { ConverterError } from '../errors.ts';
import { parseOnnx } from './io.ts';

export interface OnnxSummary {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producer?: string;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  opTypes: { domain: string; opType: string; count: number }[];
  parameterCount: number;
  externalData: boolean;
}

/** ONNX TensorProto.DataType → our dtype names. */
export const onnxDtypes: Record<number, Dtype> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
};

type ValueInfo = NonNullable<ModelProto['graph']>['input'][number];

function tensorSpec(v: ValueInfo): TensorSpec {
  const type = v.type?.value;
  if (!type || v.type?.value.case !== 'tensorType') {
    throw new ConverterError(
      'ONNX_UNSUPPORTED',
      `input/output "${v.name}" is not a tensor (sequences and maps are not supported)`,
    );
  }
  const t = type.value as {
    elemType: number;
    shape?: { dim: { value: { case: string | undefined; value?: unknown } }[] };
  };
  const dtype = onnxDtypes[t.elemType];
  if (!dtype)
    throw new ConverterError(
      'ONNX_UNSUPPORTED',
      `tensor "${v.name}" has element type ${t.elemType}, which edgefleet does not handle`,
    );
  const shape = (t.shape?.dim ?? []).map((d, i) => {
    if (d.value.case === 'dimValue') return Number(d.value.value);
    if (d.value.case === 'dimParam') return String(d.value.value);
    return `d${i}`;
  });
  return { name: v.name, shape, dtype };
}

const ELEMENT_BYTES: Record<number, number> = {
  1: 4,
  2: 1,
  3: 1,
  4: 2,
  5: 2,
  6: 4,
  7: 8,
  9: 1,
  10: 2,
  11: 8,
  12: 4,
  13: 8,
  16: 2,
};

/**
 * Every inline initializer's raw bytes must fit its shape: caught here with the tensor named,
 * rather than deep inside onnxruntime (or as a huge allocation from a hostile shape).
 */
export function checkInitializers(graph: NonNullable<ModelProto['graph']>): void {
  const check = (g: NonNullable<ModelProto['graph']>) => {
    for (const t of g.initializer) {
      if (t.dims.some((d) => d < 0n))
        throw new ConverterError('ONNX_INVALID', `tensor "${t.name}" has a negative dimension`);
      const size = ELEMENT_BYTES[t.dataType];
      if (!size || t.rawData.byteLength === 0 || t.dataLocation === 1) continue;
      const count = t.dims.reduce((a, d) => a * Number(d), 1);
      if (count * size !== t.rawData.byteLength)
        throw new ConverterError(
          'ONNX_INVALID',
          `tensor "${t.name}" has ${t.rawData.byteLength} bytes of data but its shape [${t.dims.join(',')}] needs ${count * size}`,
        );
    }
    for (const n of g.node)
      for (const a of n.attribute) for (const sub of [...(a.g ? [a.g] : []), ...a.graphs]) check(sub);
  };
  check(graph);
}

export function summarizeModel(model: ModelProto): OnnxSummary {
  const graph = model.graph;
  if (!graph) throw new ConverterError('ONNX_INVALID', 'ONNX model has no graph');
  checkInitializers(graph);
  const initializerNames = new Set(graph.initializer.map((i) => i.name));
  const counts = new Map<string, { domain: string; opType: string; count: number }>();
  const visit = (nodes: typeof graph.node) => {
    for (const n of nodes) {
      const key = `${n.domain}/${n.opType}`;
      const c = counts.get(key) ?? { domain: n.domain, opType: n.opType, count: 0 };
      c.count++;
      counts.set(key, c);
      for (const a of n.attribute) {
        if (a.g) visit(a.g.node);
        for (const g of a.graphs) visit(g.node);
      }
    }
  };
  visit(graph.node);
  let parameterCount = 0;
  let externalData = false;
  for (const init of graph.initializer) {
    parameterCount += init.dims.reduce((a, b) => a * Number(b), 1);
    if (init.dataLocation === 1) externalData = true;
  }
  return {
    irVersion: Number(model.irVersion),
    opsets: model.opsetImport.map((o) => ({ domain: o.domain, version: Number(o.version) })),
    ...(model.producerName ? { producer: `${model.producerName} ${model.producerVersion}`.trim() } : {}),
    inputs: graph.input.filter((i) => !initializerNames.has(i.name)).map(tensorSpec),
    outputs: graph.output.map(tensorSpec),
    opTypes: [...counts.values()].sort((a, b) => b.count - a.count),
    parameterCount,
    externalData,
  };
}

/** Parse and summarize; a typed ONNX_INVALID/ONNX_UNSUPPORTED error for anything unusable. */
export function inspectOnnx(bytes: Uint8Array): OnnxSummary {
  return summarizeModel(parseOnnx(bytes));
}

/** Bytes of float weights (FLOAT/FLOAT16/DOUBLE initializers and Constant tensors, in every subgraph). */
export function floatWeightBytes(model: ModelProto): number {
  let bytes = 0;
  const add = (t: { dataType: number; dims: bigint[] }) => {
    const size = t.dataType === 1 ? 4 : t.dataType === 10 ? 2 : t.dataType === 11 ? 8 : 0;
    bytes += size * t.dims.reduce((a, d) => a * Number(d), 1);
  };
  const visit = (g: NonNullable<ModelProto['graph']>) => {
    for (const t of g.initializer) add(t);
    for (const n of g.node)
      for (const a of n.attribute) {
        if (n.opType === 'Constant' && a.t) add(a.t);
        if (a.g) visit(a.g);
        for (const sub of a.graphs) visit(sub);
      }
  };
  if (model.graph) visit(model.graph);
  return bytes;
}
