/**
 * The Edge TPU linter: what `edgetpu_compiler` would map, judged from the .tflite alone (research
 * §3.3). Tensors must be 8-bit quantized with static shapes and at most 3 dimensions above 1; each
 * op must be in the supported table within its limits (rules.ts). The compiler maps ops in order
 * until the first one it cannot, and that op and everything after it run on the CPU — so the linter
 * names that first op, and reports "N of M ops on the Edge TPU".
 */
import type {
  ModelT,
  OperatorCodeT,
  OperatorT,
  SubGraphT,
  TensorT,
} from '../tflite/generated/schema_generated.ts';
import { BuiltinOperator, TensorType } from '../tflite/generated/schema_generated.ts';
import { readTflite } from '../tflite/read.ts';
import { opName, typeName } from '../tflite/types.ts';
import { type OpView, opProblems } from './rules.ts';

export const EDGETPU_CUSTOM_OP = 'edgetpu-custom-op';
/** libedgetpu 16.0 (the last release) implements runtime 14. */
export const DEFAULT_EDGETPU_RUNTIME = 14;

export interface EdgeTpuOpLint {
  index: number;
  /** "CONV_2D", or the custom code of a custom op. */
  op: string;
  onEdgeTpu: boolean;
  /** Why the op cannot be mapped (empty when it could, even if it runs on the CPU after a fallback). */
  issues: string[];
  /** Lowest Edge TPU runtime that maps it, when known. */
  runtime?: number;
}

export interface EdgeTpuLint {
  runtime: number;
  total: number;
  mapped: number;
  /** "7 of 9 ops on the Edge TPU". */
  summary: string;
  /** The op where mapping stops: it and every later op run on the CPU. */
  firstCpuOp?: { index: number; op: string; issues: string[] };
  /** Already compiled: the model holds edgetpu-custom-op(s). */
  compiled: boolean;
  /** Lowest Edge TPU runtime the mapped ops need. */
  minRuntime: number;
  ops: EdgeTpuOpLint[];
  /** Problems of the model as a whole (more subgraphs, float I/O). */
  modelIssues: string[];
}

/**
 * An op's builtin code: files older than schema 3a (such as compiler 2.x output) set only
 * `deprecated_builtin_code`, so TFLite takes the larger of the two fields, and so do we.
 */
export function builtinCodeOf(code: OperatorCodeT | undefined): BuiltinOperator {
  return Math.max(code?.builtinCode ?? 0, code?.deprecatedBuiltinCode ?? 0) as BuiltinOperator;
}

const nonOne = (shape: readonly number[]) => shape.filter((d) => d !== 1).length;

/** Tensor-level reasons an op stays on the CPU (types, dynamic shapes, rank). */
function tensorProblems(model: ModelT, graph: SubGraphT, op: OperatorT, code: BuiltinOperator): string[] {
  const issues: string[] = [];
  const constant = (t: TensorT) => (model.buffers[t.buffer]?.data.length ?? 0) > 0;
  for (const [role, list] of [
    ['input', op.inputs],
    ['output', op.outputs],
  ] as const) {
    for (const index of list) {
      if (index < 0) continue;
      const t = graph.tensors[index];
      if (!t) continue;
      const name = `${role} "${t.name}"`;
      const eightBit = t.type === TensorType.INT8 || t.type === TensorType.UINT8;
      // int32 is how biases and shape/axis/padding parameters are stored: fine when constant.
      const okInt32 = t.type === TensorType.INT32 && constant(t);
      // The quantized LSTM keeps its cell state and some gate weights in int16 by the TFLite spec.
      const okInt16 = t.type === TensorType.INT16 && code === BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM;
      if (!eightBit && !okInt32 && !okInt16)
        issues.push(`${name} is ${typeName(t.type)}, not 8-bit quantized`);
      else if (eightBit && !t.quantization?.scale.length && code !== BuiltinOperator.RESHAPE)
        issues.push(`${name} has no quantization parameters`);
      if (t.shapeSignature.some((d) => d < 0)) issues.push(`${name} has a dynamic shape`);
      if (!constant(t) && nonOne(t.shape) > 3)
        issues.push(`${name} [${t.shape.join(',')}] has more than 3 dimensions above 1`);
    }
  }
  return issues;
}

/** Lint a TFLite model (bytes or parsed) for the Edge TPU of `runtime` (default 14). */
export function lintEdgeTpu(input: Uint8Array | ModelT, options: { runtime?: number } = {}): EdgeTpuLint {
  const model = input instanceof Uint8Array ? readTflite(input) : input;
  const runtime = options.runtime ?? DEFAULT_EDGETPU_RUNTIME;
  const graph = model.subgraphs[0];
  const modelIssues: string[] = [];
  if (model.subgraphs.length > 1)
    modelIssues.push(
      `${model.subgraphs.length} subgraphs: only the main one is compiled (control flow runs on the CPU)`,
    );
  const ops: EdgeTpuOpLint[] = [];
  let minRuntime = 10;
  let stopped: EdgeTpuLint['firstCpuOp'];
  let compiled = false;
  for (const [index, op] of (graph?.operators ?? []).entries()) {
    const opcode = model.operatorCodes[op.opcodeIndex];
    const code = builtinCodeOf(opcode);
    const custom = code === BuiltinOperator.CUSTOM ? String(opcode?.customCode ?? '') : undefined;
    const name = custom ?? opName(code);
    let issues: string[];
    let needs: number | undefined;
    if (custom === EDGETPU_CUSTOM_OP) {
      compiled = true;
      issues = [];
    } else if (custom !== undefined) {
      issues = [`custom op "${custom}" is not supported by the Edge TPU`];
    } else {
      const view: OpView = {
        op,
        graph: graph as SubGraphT,
        model,
        input: (i) => graph?.tensors[op.inputs[i] ?? -1],
        output: (i) => graph?.tensors[op.outputs[i] ?? -1],
        constant: (i) => {
          const t = graph?.tensors[op.inputs[i] ?? -1];
          const data = t ? model.buffers[t.buffer]?.data : undefined;
          return data?.length ? Uint8Array.from(data) : undefined;
        },
      };
      const own = opProblems(code, view, runtime);
      needs = own.runtime;
      issues = [
        ...own.issues,
        ...(own.runtime !== undefined ? tensorProblems(model, view.graph, op, code) : []),
      ];
    }
    const onEdgeTpu = !stopped && issues.length === 0;
    if (!onEdgeTpu && !stopped) stopped = { index, op: name, issues };
    if (onEdgeTpu && needs !== undefined) minRuntime = Math.max(minRuntime, needs);
    ops.push({ index, op: name, onEdgeTpu, issues, ...(needs !== undefined ? { runtime: needs } : {}) });
  }
  const mapped = ops.filter((o) => o.onEdgeTpu).length;
  return {
    runtime,
    total: ops.length,
    mapped,
    summary: `${mapped} of ${ops.length} ops on the Edge TPU`,
    ...(stopped ? { firstCpuOp: stopped } : {}),
    compiled,
    minRuntime,
    ops,
    modelIssues,
  };
}

/** One line for reports: the count, and where and why mapping stops. */
export function describeLint(lint: EdgeTpuLint): string {
  if (!lint.firstCpuOp) return lint.summary;
  const f = lint.firstCpuOp;
  const rest = lint.total - f.index - 1;
  return (
    `${lint.summary}; op ${f.index} (${f.op}) falls back to the CPU: ${f.issues.join('; ')}` +
    (rest > 0 ? `, and the ${rest} op(s) after it run on the CPU too` : '')
  );
}
