/**
 * Consistency checks after parsing, the ones TFLite's own verifier and interpreter builder make:
 * every index (opcode, tensor, buffer, subgraph) in range, constant data the size its shape and type
 * need, quantization arrays that agree. A failure names the subgraph, operator or tensor.
 */
import { TfliteError } from './errors.ts';
import type { ModelT, SubGraphT, TensorT } from './generated/schema_generated.ts';
import { ELEMENT_BYTES, typeName } from './types.ts';

/** One tensor larger than this is a corrupt shape, not a model for a 1–8 GB board. */
export const MAX_TENSOR_BYTES = 512 * 2 ** 20;

function fail(message: string): never {
  throw new TfliteError('TFLITE_INVALID', `inconsistent TFLite model: ${message}`);
}

function checkTensor(model: ModelT, t: TensorT, where: string): void {
  // Models without constants may omit the buffer list; buffer 0 then still means "no data".
  if (t.buffer >= model.buffers.length && t.buffer !== 0)
    fail(`${where} uses buffer ${t.buffer} but the model has ${model.buffers.length}`);
  if (t.shape.some((d) => !Number.isInteger(d) || d < 0)) fail(`${where} has shape [${t.shape.join(',')}]`);
  const data = model.buffers[t.buffer]?.data;
  const size = ELEMENT_BYTES[t.type];
  const bytes = t.shape.reduce((a, b) => a * b, 1) * (size ?? 1);
  if (bytes > MAX_TENSOR_BYTES)
    throw new TfliteError(
      'TFLITE_UNSUPPORTED',
      `${where} [${t.shape.join(',')}] would take ${Math.round(bytes / 2 ** 20)} MiB, more than an edge device runs (${MAX_TENSOR_BYTES / 2 ** 20} MiB)`,
    );
  if (data && data.length > 0 && size !== undefined) {
    const want = t.shape.reduce((a, b) => a * b, 1) * size;
    if (data.length !== want)
      fail(
        `${where} (${typeName(t.type)} [${t.shape.join(',')}]) needs ${want} bytes of data, its buffer has ${data.length}`,
      );
  }
  const q = t.quantization;
  if (q && q.scale.length > 0) {
    if (q.zeroPoint.length !== 0 && q.zeroPoint.length !== q.scale.length)
      fail(`${where} has ${q.scale.length} scales but ${q.zeroPoint.length} zero points`);
    if (q.scale.length > 1) {
      if (q.quantizedDimension < 0 || q.quantizedDimension >= t.shape.length)
        fail(
          `${where} is quantized along dimension ${q.quantizedDimension} of a rank-${t.shape.length} tensor`,
        );
      if (t.shape[q.quantizedDimension] !== q.scale.length)
        fail(`${where} has ${q.scale.length} scales for ${t.shape[q.quantizedDimension]} channels`);
    }
  }
}

function checkIndices(list: number[], count: number, optional: boolean, where: string): void {
  for (const i of list)
    if (!Number.isInteger(i) || i >= count || i < (optional ? -1 : 0))
      fail(`${where} refers to tensor ${i} of ${count}`);
}

function checkSubgraph(model: ModelT, g: SubGraphT, s: number): void {
  const n = g.tensors.length;
  g.tensors.forEach((t, i) => {
    checkTensor(model, t, `tensor ${i} "${t.name ?? ''}" of subgraph ${s}`);
  });
  checkIndices(g.inputs, n, false, `subgraph ${s} inputs`);
  checkIndices(g.outputs, n, false, `subgraph ${s} outputs`);
  // Data flow: every tensor an operator reads exists by then (a graph input, a constant, a variable
  // or an earlier operator's output). Kernels assume it; a file that breaks it crashes TFLite natively.
  const ready = new Set<number>(g.inputs);
  g.tensors.forEach((t, i) => {
    if (t.isVariable || (model.buffers[t.buffer]?.data.length ?? 0) > 0) ready.add(i);
  });
  g.operators.forEach((op, k) => {
    const where = `operator ${k} of subgraph ${s}`;
    if (op.opcodeIndex >= model.operatorCodes.length)
      fail(`${where} uses operator code ${op.opcodeIndex} of ${model.operatorCodes.length}`);
    checkIndices(op.inputs, n, true, `${where} inputs`);
    checkIndices(op.outputs, n, false, `${where} outputs`);
    checkIndices(op.intermediates, n, false, `${where} intermediates`);
    for (const i of op.inputs)
      if (i >= 0 && !ready.has(i))
        fail(
          `${where} reads tensor ${i} "${g.tensors[i]?.name ?? ''}", which is not an input, a constant or computed before`,
        );
    for (const o of op.outputs) {
      if ((model.buffers[g.tensors[o]?.buffer ?? 0]?.data.length ?? 0) > 0)
        fail(`${where} writes tensor ${o} "${g.tensors[o]?.name ?? ''}", which is a constant`);
      ready.add(o);
    }
  });
  for (const o of g.outputs)
    if (!ready.has(o)) fail(`subgraph ${s} output ${o} "${g.tensors[o]?.name ?? ''}" is never computed`);
}

/** Throws TFLITE_INVALID when the model refers to things it does not have. */
export function validateModel(model: ModelT): void {
  if (model.subgraphs.length === 0) fail('no subgraphs');
  model.subgraphs.forEach((g, s) => {
    checkSubgraph(model, g, s);
  });
  for (const [i, m] of model.metadata.entries())
    if (m.buffer >= model.buffers.length) fail(`metadata ${i} "${m.name ?? ''}" uses a missing buffer`);
  for (const [i, sig] of model.signatureDefs.entries()) {
    const g = model.subgraphs[sig.subgraphIndex];
    if (!g) fail(`signature ${i} refers to subgraph ${sig.subgraphIndex}`);
    for (const m of [...sig.inputs, ...sig.outputs])
      if (m.tensorIndex >= g.tensors.length) fail(`signature ${i} refers to tensor ${m.tensorIndex}`);
  }
}
