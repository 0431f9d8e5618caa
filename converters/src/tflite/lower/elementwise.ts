/**
 * Elementwise ops, activations, softmax and concatenation. Add/Sub/Mul keep independent int8
 * parameters per operand (the kernels rescale); a constant operand is quantized per tensor and laid
 * out for broadcasting against an NHWC map. Div by a constant becomes Mul by its reciprocal (the
 * Edge TPU has no DIV).
 */
import type { NodeProto } from 'onnx-buf';
import { attrInt } from '../../onnx/graph.ts';
import { computeScaleZp, minMax, quantizeInto } from '../../quant/params.ts';
import { TensorType } from '../build.ts';
import {
  ActivationFunctionType,
  AddOptionsT,
  BuiltinOperator,
  BuiltinOptions,
  ConcatenationOptionsT,
  HardSwishOptionsT,
  MulOptionsT,
  SoftmaxOptionsT,
  SubOptionsT,
} from '../generated/schema_generated.ts';
import { type LoweringContext, type LValue, nhwcAxis, toNhwc, unsupported } from './context.ts';
import { activationOf } from './plan.ts';

/** A constant operand as an int8 tensor shaped to broadcast against `like`. */
function constOperand(
  ctx: LoweringContext,
  node: NodeProto,
  name: string,
  like: LValue,
  reciprocal: boolean,
): number {
  const t = ctx.constant(name);
  if (!t) unsupported(node, `"${name}" is neither an activation nor a constant`);
  let values = ctx.floats(name, node);
  if (reciprocal) values = values.map((v) => 1 / v);
  if (values.some((v) => !Number.isFinite(v))) unsupported(node, 'a constant operand that is not finite');
  let dims = t.dims.map(Number);
  if (like.nhwc) {
    if (dims.length > 4) unsupported(node, `a constant of rank ${dims.length}`);
    dims = toNhwc([...new Array(4 - dims.length).fill(1), ...dims]);
    if (dims[3] !== 1 && dims.slice(1, 3).some((d) => d !== 1))
      unsupported(node, 'a constant that varies over both channels and space');
  } else if (like.hwc) unsupported(node, 'elementwise op on a flattened NHWC map');
  const [lo, hi] = minMax(values);
  const p = computeScaleZp(lo, hi, -128, 127);
  const data = new Int8Array(values.length);
  quantizeInto(values, p, -128, 127, data);
  return ctx.constTensor(
    `${ctx.outputOf(node)}/${node.opType.toLowerCase()}_operand`,
    dims,
    TensorType.INT8,
    data,
    {
      scale: [p.scale],
      zeroPoint: [p.zeroPoint],
    },
  );
}

/** Add, Sub, Mul (and Div by a constant). */
export function lowerBinary(ctx: LoweringContext, node: NodeProto): void {
  const [a, b] = node.input as [string, string];
  const va = ctx.constant(a) ? undefined : ctx.value(a, node);
  const vb = ctx.constant(b) ? undefined : ctx.value(b, node);
  const like = va ?? vb;
  if (!like) unsupported(node, 'both operands are constants (fold them before converting)');
  if (va && vb && (va.nhwc !== vb.nhwc || va.hwc || vb.hwc))
    unsupported(node, 'operands in different layouts');
  if (node.opType === 'Div' && vb) unsupported(node, 'division by an activation');
  const ta = va?.tensor ?? constOperand(ctx, node, a, like, false);
  const tb = vb?.tensor ?? constOperand(ctx, node, b, like, node.opType === 'Div');
  const out = ctx.outputOf(node);
  const y = ctx.activation(out, node, { nhwc: like.nhwc });
  const act = ctx.plan.fused.get(node)?.activation ?? ActivationFunctionType.NONE;
  if (node.opType === 'Add')
    ctx.builder.addOperator(
      BuiltinOperator.ADD,
      [ta, tb],
      [y.tensor],
      BuiltinOptions.AddOptions,
      new AddOptionsT(act),
    );
  else if (node.opType === 'Sub')
    ctx.builder.addOperator(
      BuiltinOperator.SUB,
      [ta, tb],
      [y.tensor],
      BuiltinOptions.SubOptions,
      new SubOptionsT(act),
    );
  else
    ctx.builder.addOperator(
      BuiltinOperator.MUL,
      [ta, tb],
      [y.tensor],
      BuiltinOptions.MulOptions,
      new MulOptionsT(act),
    );
}

const UNARY: Record<string, BuiltinOperator> = {
  Sigmoid: BuiltinOperator.LOGISTIC,
  Tanh: BuiltinOperator.TANH,
  HardSwish: BuiltinOperator.HARD_SWISH,
};

const ACTIVATION_OPS: Partial<Record<ActivationFunctionType, BuiltinOperator>> = {
  [ActivationFunctionType.RELU]: BuiltinOperator.RELU,
  [ActivationFunctionType.RELU6]: BuiltinOperator.RELU6,
  [ActivationFunctionType.RELU_N1_TO_1]: BuiltinOperator.RELU_N1_TO_1,
};

/** Relu, Clip (0–6, −1–1, 0–∞), Sigmoid, Tanh, HardSwish that were not fused into the op before. */
export function lowerUnary(ctx: LoweringContext, node: NodeProto): void {
  const x = ctx.value(node.input[0] as string, node);
  let code = UNARY[node.opType];
  if (code === undefined) {
    const act = activationOf(node, ctx.facts.inits);
    code = act === undefined ? undefined : ACTIVATION_OPS[act];
  }
  if (code === undefined)
    unsupported(node, 'only Clip(0, 6), Clip(-1, 1) and Clip(0, ∞) have TFLite equivalents');
  const out = ctx.outputOf(node);
  const y = ctx.activation(out, node, { nhwc: x.nhwc, ...(x.hwc ? { hwc: x.hwc } : {}) });
  const options = code === BuiltinOperator.HARD_SWISH ? new HardSwishOptionsT() : undefined;
  ctx.builder.addOperator(
    code,
    [x.tensor],
    [y.tensor],
    options ? BuiltinOptions.HardSwishOptions : undefined,
    options,
  );
}

/** Softmax over the last (NHWC) axis. */
export function lowerSoftmax(ctx: LoweringContext, node: NodeProto): void {
  const x = ctx.value(node.input[0] as string, node);
  const rank = x.shape.length;
  // The model is normalised to opset 13 first, where the default axis is the last one.
  let axis = attrInt(node, 'axis', -1);
  if (axis < 0) axis += rank;
  const last = x.nhwc ? axis === 1 : axis === rank - 1;
  if (!last) unsupported(node, `softmax over axis ${axis} of [${x.shape.join(',')}] is not the channel axis`);
  const out = ctx.outputOf(node);
  const y = ctx.activation(out, node, { nhwc: x.nhwc });
  ctx.builder.addOperator(
    BuiltinOperator.SOFTMAX,
    [x.tensor],
    [y.tensor],
    BuiltinOptions.SoftmaxOptions,
    new SoftmaxOptionsT(1),
  );
}

/** Concat of activations in one layout → CONCATENATION (shared int8 parameters). */
export function lowerConcat(ctx: LoweringContext, node: NodeProto): void {
  const inputs = node.input.filter(Boolean).map((n) => ctx.value(n, node));
  const first = inputs[0];
  if (!first) unsupported(node, 'no inputs');
  if (inputs.some((v) => v.nhwc !== first.nhwc || v.hwc)) unsupported(node, 'inputs in different layouts');
  let axis = attrInt(node, 'axis', 1);
  if (axis < 0) axis += first.shape.length;
  const out = ctx.outputOf(node);
  const y = ctx.activation(out, node, { nhwc: first.nhwc });
  ctx.builder.addOperator(
    BuiltinOperator.CONCATENATION,
    inputs.map((v) => v.tensor),
    [y.tensor],
    BuiltinOptions.ConcatenationOptions,
    new ConcatenationOptionsT(first.nhwc ? nhwcAxis(axis) : axis, ActivationFunctionType.NONE),
  );
}
