/**
 * What the Edge TPU compiler maps, per TFLite op (coral.ai/docs/edgetpu/models-intro, "Supported
 * operations"): the op list with the documented limitations, and the runtime version that first
 * took the op (ops from the original 2019 table need any runtime; later additions need 13 or 14 —
 * versions from that page's table as we recorded it, see docs/converters.md). Each rule returns the
 * reasons an op stays on the CPU, or nothing.
 */
import {
  ActivationFunctionType,
  BuiltinOperator,
  type ModelT,
  type OperatorT,
  type StridedSliceOptionsT,
  type SubGraphT,
  type TensorT,
} from '../tflite/generated/schema_generated.ts';

export interface OpView {
  op: OperatorT;
  graph: SubGraphT;
  model: ModelT;
  input(i: number): TensorT | undefined;
  output(i: number): TensorT | undefined;
  /** Constant data of an input, when it has some. */
  constant(i: number): Uint8Array | undefined;
}

type Check = (v: OpView) => string[];

interface Rule {
  /** Lowest Edge TPU runtime that maps the op. */
  runtime: number;
  check?: Check;
}

const nonOne = (shape: readonly number[]) => shape.filter((d) => d !== 1).length;
const fusedActivation = (v: OpView) =>
  ((v.op.builtinOptions as { fusedActivationFunction?: number } | null)?.fusedActivationFunction ??
    ActivationFunctionType.NONE) !== ActivationFunctionType.NONE;

const noFusedActivation: Check = (v) =>
  fusedActivation(v) ? ['a fused activation is not supported on this op'] : [];

/** Axes (of a 4-D NHWC tensor) an op may touch: only the spatial ones. */
function spatialOnly(axes: number[], rank: number, what: string): string[] {
  const bad = axes.map((a) => (a < 0 ? a + rank : a)).filter((a) => rank === 4 && (a === 0 || a === 3));
  return bad.length ? [`${what} along the ${bad.includes(0) ? 'batch' : 'channel'} axis (only x and y)`] : [];
}

function int32s(bytes: Uint8Array | undefined): number[] {
  if (!bytes) return [];
  return Array.from(new Int32Array(bytes.slice().buffer));
}

export const RULES: Partial<Record<BuiltinOperator, Rule>> = {
  [BuiltinOperator.ADD]: { runtime: 10 },
  [BuiltinOperator.SUB]: { runtime: 10 },
  [BuiltinOperator.MUL]: { runtime: 10 },
  [BuiltinOperator.MAXIMUM]: { runtime: 10 },
  [BuiltinOperator.MINIMUM]: { runtime: 10 },
  [BuiltinOperator.LOGISTIC]: { runtime: 10 },
  [BuiltinOperator.RELU]: { runtime: 10 },
  [BuiltinOperator.RELU6]: { runtime: 10 },
  [BuiltinOperator.RELU_N1_TO_1]: { runtime: 10 },
  [BuiltinOperator.TANH]: { runtime: 10 },
  [BuiltinOperator.L2_NORMALIZATION]: { runtime: 10 },
  [BuiltinOperator.RESHAPE]: { runtime: 10 },
  [BuiltinOperator.SLICE]: { runtime: 10 },
  [BuiltinOperator.SPACE_TO_DEPTH]: { runtime: 10 },
  [BuiltinOperator.SPLIT]: { runtime: 10 },
  [BuiltinOperator.AVERAGE_POOL_2D]: { runtime: 10, check: noFusedActivation },
  [BuiltinOperator.MAX_POOL_2D]: { runtime: 10, check: noFusedActivation },
  [BuiltinOperator.CONV_2D]: {
    runtime: 10,
    check: (v) => {
      const o = v.op.builtinOptions as { dilationWFactor?: number; dilationHFactor?: number } | null;
      return (o?.dilationWFactor ?? 1) !== (o?.dilationHFactor ?? 1) ? ['different dilation in x and y'] : [];
    },
  },
  [BuiltinOperator.DEPTHWISE_CONV_2D]: {
    runtime: 10,
    check: (v) => {
      const o = v.op.builtinOptions as { dilationWFactor?: number; dilationHFactor?: number } | null;
      return (o?.dilationWFactor ?? 1) > 1 || (o?.dilationHFactor ?? 1) > 1
        ? ['dilated depthwise kernels']
        : [];
    },
  },
  [BuiltinOperator.FULLY_CONNECTED]: {
    runtime: 10,
    check: (v) => {
      const issues: string[] = [];
      const o = v.op.builtinOptions as { weightsFormat?: number } | null;
      if ((o?.weightsFormat ?? 0) !== 0) issues.push('only the default weights format');
      const out = v.output(0);
      if (out && nonOne(out.shape) > 1)
        issues.push(`the output [${out.shape.join(',')}] is not one-dimensional`);
      return issues;
    },
  },
  [BuiltinOperator.CONCATENATION]: {
    runtime: 10,
    check: (v) => {
      const issues = noFusedActivation(v);
      const consts = v.op.inputs.map((_, i) => v.constant(i)).filter((c) => c !== undefined);
      if (consts.length && (v.op.inputs.length !== 2 || consts.some((c) => c.some((b) => b !== 0))))
        issues.push('a constant input must be all zeros and one of exactly two inputs');
      return issues;
    },
  },
  [BuiltinOperator.MEAN]: {
    runtime: 10,
    check: (v) => spatialOnly(int32s(v.constant(1)), v.input(0)?.shape.length ?? 0, 'reduction'),
  },
  [BuiltinOperator.SUM]: {
    runtime: 13,
    check: (v) => spatialOnly(int32s(v.constant(1)), v.input(0)?.shape.length ?? 0, 'reduction'),
  },
  [BuiltinOperator.PAD]: {
    runtime: 10,
    check: (v) => {
      const p = int32s(v.constant(1));
      const rank = v.input(0)?.shape.length ?? 0;
      const axes = [...Array(rank).keys()].filter((a) => (p[2 * a] ?? 0) !== 0 || (p[2 * a + 1] ?? 0) !== 0);
      return spatialOnly(axes, rank, 'padding');
    },
  },
  [BuiltinOperator.SOFTMAX]: {
    runtime: 10,
    check: (v) => {
      const x = v.input(0);
      if (!x) return [];
      const n = x.shape.reduce((a, b) => a * b, 1);
      const issues = nonOne(x.shape) > 1 ? [`the input [${x.shape.join(',')}] is not one-dimensional`] : [];
      if (n > 16_000) issues.push(`${n} elements (at most 16,000)`);
      return issues;
    },
  },
  [BuiltinOperator.RESIZE_BILINEAR]: { runtime: 10, check: resizeCheck },
  [BuiltinOperator.RESIZE_NEAREST_NEIGHBOR]: { runtime: 10, check: resizeCheck },
  [BuiltinOperator.SQUEEZE]: {
    runtime: 10,
    check: (v) => {
      const x = v.input(0);
      const firstNonOne = x ? x.shape.findIndex((d) => d !== 1) : -1;
      const dims = (v.op.builtinOptions as { squeezeDims?: number[] } | null)?.squeezeDims ?? [];
      return firstNonOne >= 0 && dims.some((d) => d > firstNonOne)
        ? ['only leading 1-dimensions can be squeezed']
        : [];
    },
  },
  [BuiltinOperator.STRIDED_SLICE]: {
    runtime: 10,
    check: (v) => {
      const o = v.op.builtinOptions as StridedSliceOptionsT | null;
      const issues = int32s(v.constant(3)).some((s) => s !== 1) ? ['strides other than 1'] : [];
      if ((o?.ellipsisMask ?? 0) !== 0 || (o?.newAxisMask ?? 0) !== 0)
        issues.push('ellipsis or new-axis masks');
      return issues;
    },
  },
  [BuiltinOperator.EXPAND_DIMS]: { runtime: 13 },
  [BuiltinOperator.PACK]: {
    runtime: 13,
    check: (v) =>
      (v.op.builtinOptions as { axis?: number } | null)?.axis === 0 ? ['packing along the batch axis'] : [],
  },
  [BuiltinOperator.PRELU]: { runtime: 13 },
  [BuiltinOperator.QUANTIZE]: { runtime: 13 },
  [BuiltinOperator.TRANSPOSE_CONV]: { runtime: 13 },
  [BuiltinOperator.REDUCE_MAX]: { runtime: 14 },
  [BuiltinOperator.REDUCE_MIN]: { runtime: 14 },
  [BuiltinOperator.RSQRT]: { runtime: 14 },
  [BuiltinOperator.SQUARED_DIFFERENCE]: { runtime: 14 },
  [BuiltinOperator.TRANSPOSE]: { runtime: 14 },
  [BuiltinOperator.HARD_SWISH]: { runtime: 14 },
  [BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM]: { runtime: 14 },
  [BuiltinOperator.GATHER]: { runtime: 14 },
  [BuiltinOperator.BATCH_MATMUL]: { runtime: 14 },
};

function resizeCheck(v: OpView): string[] {
  const x = v.input(0);
  const y = v.output(0);
  const issues: string[] = [];
  if (x && nonOne(x.shape) > 3) issues.push('the input is more than 3-dimensional');
  if (y && nonOne(y.shape) > 3) issues.push('the output is more than 3-dimensional');
  return issues;
}

/** Reasons the op itself (not its tensors) keeps it off the Edge TPU. */
export function opProblems(
  code: BuiltinOperator,
  v: OpView,
  runtime: number,
): { issues: string[]; runtime?: number } {
  const rule = RULES[code];
  if (!rule) return { issues: ['not supported by the Edge TPU'] };
  if (rule.runtime > runtime)
    return {
      issues: [`needs Edge TPU runtime ${rule.runtime} (linting for ${runtime})`],
      runtime: rule.runtime,
    };
  return { issues: rule.check?.(v) ?? [], runtime: rule.runtime };
}
