/**
 * Convolutions and pooling: Conv → CONV_2D or DEPTHWISE_CONV_2D (weights OIHW → OHWI or 1HWO,
 * int8 symmetric per output channel, int32 bias at input_scale × weight_scale), MaxPool and
 * AveragePool → *_POOL_2D, GlobalAveragePool and ReduceMean over H, W → MEAN, Pad → PAD. ONNX pads
 * become TFLite SAME or VALID when they match; otherwise an explicit PAD (which pads with the
 * input's zero point, i.e. a real 0) goes before a VALID op.
 */
import type { NodeProto } from 'onnx-buf';
import { attrInt, attrInts, getAttr } from '../../onnx/graph.ts';
import { quantizeBias, quantizeWeight } from '../../quant/params.ts';
import { TensorType } from '../build.ts';
import {
  ActivationFunctionType,
  BuiltinOperator,
  BuiltinOptions,
  Conv2DOptionsT,
  DepthwiseConv2DOptionsT,
  Padding,
  PadOptionsT,
  Pool2DOptionsT,
  ReducerOptionsT,
} from '../generated/schema_generated.ts';
import { type LoweringContext, type LValue, toNhwc, unsupported } from './context.ts';

interface Spatial {
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  /** ONNX pads: [top, left, bottom, right]. */
  pads: [number, number, number, number];
}

function spatial(node: NodeProto, kernel: [number, number]): Spatial {
  const s = attrInts(node, 'strides') ?? [1, 1];
  const d = attrInts(node, 'dilations') ?? [1, 1];
  const p = attrInts(node, 'pads') ?? [0, 0, 0, 0];
  if (s.length !== 2 || d.length !== 2 || p.length !== 4)
    unsupported(node, 'only 2-D spatial ops are supported');
  return {
    kernel,
    strides: [s[0] as number, s[1] as number],
    dilations: [d[0] as number, d[1] as number],
    pads: [p[0] as number, p[1] as number, p[2] as number, p[3] as number],
  };
}

/** SAME or VALID when the ONNX padding is one of them; else the explicit [before, after] per axis. */
function resolvePadding(
  node: NodeProto,
  inHW: [number, number],
  sp: Spatial,
): { padding: Padding; explicit?: [[number, number], [number, number]] } {
  const autoPad = getAttr(node, 'auto_pad');
  const mode = autoPad ? new TextDecoder().decode(autoPad.s) : 'NOTSET';
  const same = [0, 1].map((i) => {
    const dk = ((sp.kernel[i] as number) - 1) * (sp.dilations[i] as number) + 1;
    const out = Math.ceil((inHW[i] as number) / (sp.strides[i] as number));
    const total = Math.max((out - 1) * (sp.strides[i] as number) + dk - (inHW[i] as number), 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2)] as [number, number];
  }) as [[number, number], [number, number]];
  if (mode === 'VALID') return { padding: Padding.VALID };
  if (mode === 'SAME_UPPER') return { padding: Padding.SAME };
  if (mode === 'SAME_LOWER')
    return {
      padding: Padding.VALID,
      explicit: same.map(([b, a]) => [a, b]) as [[number, number], [number, number]],
    };
  const [t, l, b, r] = sp.pads;
  if (t === 0 && l === 0 && b === 0 && r === 0) return { padding: Padding.VALID };
  if (t === same[0][0] && b === same[0][1] && l === same[1][0] && r === same[1][1])
    return { padding: Padding.SAME };
  return {
    padding: Padding.VALID,
    explicit: [
      [t, b],
      [l, r],
    ],
  };
}

/** An explicit PAD op on an NHWC value; returns the padded value (same int8 parameters). */
function padNhwc(
  ctx: LoweringContext,
  x: LValue,
  pads: [[number, number], [number, number]],
  name: string,
): LValue {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const shape = [n, c, h + pads[0][0] + pads[0][1], w + pads[1][0] + pads[1][1]];
  const p = ctx.quantOf(x);
  const paddings = ctx.constTensor(
    `${name}/paddings`,
    [4, 2],
    TensorType.INT32,
    Int32Array.from([0, 0, ...pads[0], ...pads[1], 0, 0]),
  );
  const tensor = ctx.builder.addTensor({
    name: `${name}/padded`,
    shape: toNhwc(shape),
    type: TensorType.INT8,
    quant: { scale: [p.scale], zeroPoint: [p.zeroPoint] },
  });
  ctx.builder.addOperator(
    BuiltinOperator.PAD,
    [x.tensor, paddings],
    [tensor],
    BuiltinOptions.PadOptions,
    new PadOptionsT(),
  );
  return { tensor, shape, nhwc: true };
}

function checkOutput(
  ctx: LoweringContext,
  node: NodeProto,
  out: string,
  inHW: [number, number],
  sp: Spatial,
  padding: Padding,
) {
  const want = ctx.shapeOf(out, node);
  const got = [0, 1].map((i) => {
    const dk = ((sp.kernel[i] as number) - 1) * (sp.dilations[i] as number) + 1;
    const s = sp.strides[i] as number;
    return padding === Padding.SAME
      ? Math.ceil((inHW[i] as number) / s)
      : Math.floor(((inHW[i] as number) - dk) / s) + 1;
  });
  if (want[2] !== got[0] || want[3] !== got[1])
    unsupported(
      node,
      `TFLite would compute a ${got.join('×')} output where ONNX has ${want[2]}×${want[3]} (ceil_mode?)`,
    );
}

function input4d(ctx: LoweringContext, node: NodeProto): LValue {
  const x = ctx.value(node.input[0] as string, node);
  if (!x.nhwc) unsupported(node, `needs a rank-4 NCHW input, got [${x.shape.join(',')}]`);
  return x;
}

/** Conv → CONV_2D (group 1) or DEPTHWISE_CONV_2D (group = input channels). */
export function lowerConv(ctx: LoweringContext, node: NodeProto): void {
  let x = input4d(ctx, node);
  const wName = node.input[1];
  const wt = ctx.constant(wName);
  if (!wt) unsupported(node, 'the weights must be constant');
  const [o, i, kh, kw] = wt.dims.map(Number) as [number, number, number, number];
  const w = ctx.floats(wName, node);
  const channels = x.shape[1] as number;
  const group = attrInt(node, 'group', 1);
  const depthwise = group > 1 && group === channels && i === 1;
  if (group !== 1 && !depthwise)
    unsupported(node, `grouped convolution (group ${group} of ${channels} channels)`);
  const sp = spatial(node, [kh, kw]);
  const out = ctx.outputOf(node);
  const { padding, explicit } = resolvePadding(node, [x.shape[2] as number, x.shape[3] as number], sp);
  if (explicit) x = padNhwc(ctx, x, explicit, out);
  checkOutput(ctx, node, out, [x.shape[2] as number, x.shape[3] as number], sp, padding);

  // OIHW → OHWI (conv) or → 1HW(O) (depthwise, channel multiplier = O / C).
  const perm = new Float32Array(w.length);
  for (let a = 0; a < o; a++)
    for (let c = 0; c < i; c++)
      for (let y = 0; y < kh; y++)
        for (let z = 0; z < kw; z++) {
          const src = ((a * i + c) * kh + y) * kw + z;
          const dst = depthwise ? (y * kw + z) * o + a : ((a * kh + y) * kw + z) * i + c;
          perm[dst] = w[src] as number;
        }
  const dims = depthwise ? [1, kh, kw, o] : [o, kh, kw, i];
  const axis = depthwise ? 3 : 0;
  const q = quantizeWeight(perm, dims, { type: 'int8', axis, symmetric: true });
  const inScale = ctx.quantOf(x).scale;
  const bias = node.input[2] ? ctx.floats(node.input[2], node) : new Float32Array(o);
  const qb = quantizeBias(bias, inScale, q.scales);
  if (qb.clipped) ctx.notes.push(`${node.name || out}: ${qb.clipped} bias value(s) clipped to int32`);
  const weights = ctx.constTensor(`${out}/weights`, dims, TensorType.INT8, q.data as Int8Array, {
    scale: [...q.scales],
    zeroPoint: new Array(o).fill(0),
    axis,
  });
  const biasT = ctx.constTensor(`${out}/bias`, [o], TensorType.INT32, qb.data, {
    scale: [...qb.scales],
    zeroPoint: new Array(o).fill(0),
    axis: 0,
  });
  const y = ctx.activation(out, node, { nhwc: true });
  const act = ctx.plan.fused.get(node)?.activation ?? ActivationFunctionType.NONE;
  const [sh, sw] = sp.strides;
  const [dh, dw] = sp.dilations;
  if (depthwise)
    ctx.builder.addOperator(
      BuiltinOperator.DEPTHWISE_CONV_2D,
      [x.tensor, weights, biasT],
      [y.tensor],
      BuiltinOptions.DepthwiseConv2DOptions,
      new DepthwiseConv2DOptionsT(padding, sw, sh, o / channels, act, dw, dh),
    );
  else
    ctx.builder.addOperator(
      BuiltinOperator.CONV_2D,
      [x.tensor, weights, biasT],
      [y.tensor],
      BuiltinOptions.Conv2DOptions,
      new Conv2DOptionsT(padding, sw, sh, act, dw, dh),
    );
}

/** MaxPool / AveragePool → MAX_POOL_2D / AVERAGE_POOL_2D (same int8 parameters in and out). */
export function lowerPool(ctx: LoweringContext, node: NodeProto): void {
  let x = input4d(ctx, node);
  const k = attrInts(node, 'kernel_shape');
  if (k?.length !== 2) unsupported(node, 'only 2-D pooling is supported');
  if (node.output.filter(Boolean).length > 1) unsupported(node, 'MaxPool indices output is not supported');
  const sp = spatial(node, [k[0] as number, k[1] as number]);
  if (sp.dilations.some((d) => d !== 1)) unsupported(node, 'dilated pooling');
  const out = ctx.outputOf(node);
  const max = node.opType === 'MaxPool';
  const { padding, explicit } = resolvePadding(node, [x.shape[2] as number, x.shape[3] as number], sp);
  if (explicit) {
    // PAD writes real zeros: right for a max pool only when the input is never negative, and for an
    // average pool only when ONNX counts the padding too.
    const lo = ctx.facts.ranges.get(ctx.plan.canonical(node.input[0] as string))?.[0] ?? -1;
    if (max && lo < 0) unsupported(node, 'asymmetric padding of a max pool over negative values');
    if (!max && attrInt(node, 'count_include_pad', 0) !== 1)
      unsupported(node, 'asymmetric padding of an average pool that excludes the padding');
    x = padNhwc(ctx, x, explicit, out);
  } else if (!max && padding === Padding.SAME && attrInt(node, 'count_include_pad', 0) === 1)
    unsupported(node, 'TFLite average pooling never counts the padding (count_include_pad=1)');
  checkOutput(ctx, node, out, [x.shape[2] as number, x.shape[3] as number], sp, padding);
  const y = ctx.activation(out, node, { nhwc: true });
  ctx.builder.addOperator(
    max ? BuiltinOperator.MAX_POOL_2D : BuiltinOperator.AVERAGE_POOL_2D,
    [x.tensor],
    [y.tensor],
    BuiltinOptions.Pool2DOptions,
    new Pool2DOptionsT(
      padding,
      sp.strides[1],
      sp.strides[0],
      sp.kernel[1],
      sp.kernel[0],
      ActivationFunctionType.NONE,
    ),
  );
}

/** GlobalAveragePool, or ReduceMean over H and W → MEAN over NHWC axes 1, 2. */
export function lowerMean(ctx: LoweringContext, node: NodeProto): void {
  const x = input4d(ctx, node);
  let keep = true;
  if (node.opType === 'ReduceMean') {
    const axes = (attrInts(node, 'axes') ?? (node.input[1] ? ctx.ints(node.input[1], node) : [])).map((a) =>
      a < 0 ? a + 4 : a,
    );
    if (axes.length !== 2 || !axes.includes(2) || !axes.includes(3))
      unsupported(node, 'only a mean over H and W is supported');
    keep = attrInt(node, 'keepdims', 1) === 1;
  }
  const out = ctx.outputOf(node);
  const axes = ctx.constTensor(`${out}/axes`, [2], TensorType.INT32, Int32Array.from([1, 2]));
  const y = keep ? ctx.activation(out, node, { nhwc: true }) : ctx.activation(out, node, { nhwc: false });
  ctx.builder.addOperator(
    BuiltinOperator.MEAN,
    [x.tensor, axes],
    [y.tensor],
    BuiltinOptions.ReducerOptions,
    new ReducerOptionsT(keep),
  );
}

/** Pad (constant zeros over H and W) → PAD. */
export function lowerPad(ctx: LoweringContext, node: NodeProto): void {
  const x = input4d(ctx, node);
  const mode = getAttr(node, 'mode');
  if (mode && new TextDecoder().decode(mode.s) !== 'constant') unsupported(node, 'only constant padding');
  if (node.input[2] && ctx.floats(node.input[2], node).some((v) => v !== 0))
    unsupported(node, 'padding with a non-zero value');
  const pads = attrInts(node, 'pads') ?? ctx.ints(node.input[1], node);
  if (pads.length !== 8 || pads.some((p) => p < 0)) unsupported(node, 'needs 8 non-negative pads');
  // ONNX: [x1_begin…x4_begin, x1_end…x4_end] over N, C, H, W.
  const per = [0, 1, 2, 3].map((a) => [pads[a] as number, pads[a + 4] as number]);
  const nhwc = [0, 2, 3, 1].flatMap((a) => per[a] as number[]);
  const out = ctx.outputOf(node);
  const paddings = ctx.constTensor(`${out}/paddings`, [4, 2], TensorType.INT32, Int32Array.from(nhwc));
  const y = ctx.activation(out, node, { nhwc: true });
  ctx.builder.addOperator(
    BuiltinOperator.PAD,
    [x.tensor, paddings],
    [y.tensor],
    BuiltinOptions.PadOptions,
    new PadOptionsT(),
  );
}
