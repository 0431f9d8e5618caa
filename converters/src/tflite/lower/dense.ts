/**
 * Dense layers and reshapes: Gemm and MatMul with a constant B → FULLY_CONNECTED (weights [out, in],
 * int8 symmetric per tensor as the TFLite spec and the Edge TPU compiler expect; alpha and beta
 * folded; a following Add of a constant vector becomes the bias), and Flatten / Reshape / Squeeze /
 * Unsqueeze → RESHAPE, with the layout rules of context.ts.
 */
import type { NodeProto } from 'onnx-buf';
import { attrFloat, attrInt } from '../../onnx/graph.ts';
import { quantizeBias, quantizeWeight } from '../../quant/params.ts';
import { TensorType } from '../build.ts';
import {
  ActivationFunctionType,
  BuiltinOperator,
  BuiltinOptions,
  FullyConnectedOptionsT,
  ReshapeOptionsT,
  TransposeOptionsT,
} from '../generated/schema_generated.ts';
import { type LoweringContext, type LValue, unsupported } from './context.ts';

/** A MatMul's bias: the constant vector of the single Add reading it, which is then skipped. */
function matmulBias(
  ctx: LoweringContext,
  node: NodeProto,
  units: number,
): { bias?: Float32Array; output: string } {
  const out = node.output[0] as string;
  const readers = ctx.facts.consumers.get(out) ?? [];
  const add = readers[0];
  if (
    readers.length !== 1 ||
    add?.opType !== 'Add' ||
    ctx.facts.outputs.includes(out) ||
    ctx.plan.fused.has(node)
  )
    return { output: ctx.outputOf(node) };
  const other = add.input[0] === out ? add.input[1] : add.input[0];
  const c = ctx.constant(other);
  if (!c || c.dims.map(Number).reduce((a, b) => a * b, 1) !== units) return { output: ctx.outputOf(node) };
  ctx.plan.skipped.add(add);
  const fused = ctx.plan.fused.get(add);
  if (fused) ctx.plan.fused.set(node, fused);
  return { bias: ctx.floats(other, node), output: fused?.output ?? (add.output[0] as string) };
}

/** Gemm / MatMul with constant weights → FULLY_CONNECTED. */
export function lowerDense(ctx: LoweringContext, node: NodeProto): void {
  const x = ctx.value(node.input[0] as string, node);
  if (x.nhwc || x.shape.length !== 2)
    unsupported(node, `needs a 2-D input, got [${x.shape.join(',')}] (flatten first)`);
  const bt = ctx.constant(node.input[1]);
  if (!bt) unsupported(node, 'the weights (B) must be constant');
  const [r, c] = bt.dims.map(Number) as [number, number];
  if (bt.dims.length !== 2) unsupported(node, 'B must be 2-D');
  const gemm = node.opType === 'Gemm';
  if (gemm && attrInt(node, 'transA', 0) !== 0) unsupported(node, 'transA=1');
  const transB = gemm && attrInt(node, 'transB', 0) === 1;
  const [inF, units] = transB ? [c, r] : [r, c];
  if (inF !== x.shape[1]) unsupported(node, `B has ${inF} inputs, A has ${x.shape[1]}`);
  const b = ctx.floats(node.input[1], node);
  const alpha = gemm ? attrFloat(node, 'alpha', 1) : 1;
  // TFLite wants [units, in]; a flatten of an NHWC map gives inputs in H·W·C order, not C·H·W.
  const w = new Float32Array(units * inF);
  const [h, wd, ch] = x.hwc ?? [1, 1, inF];
  for (let o = 0; o < units; o++)
    for (let k = 0; k < inF; k++) {
      const src = transB ? o * inF + k : k * units + o;
      // k indexes ONNX's C·H·W flatten; find its position in TFLite's H·W·C flatten.
      const dst = x.hwc ? (k % (h * wd)) * ch + Math.floor(k / (h * wd)) : k;
      w[o * inF + dst] = alpha * (b[src] as number);
    }
  let bias: Float32Array | undefined;
  let out: string;
  if (gemm) {
    out = ctx.outputOf(node);
    if (node.input[2]) {
      const cv = ctx.floats(node.input[2], node);
      const beta = attrFloat(node, 'beta', 1);
      if (cv.length !== units && cv.length !== 1)
        unsupported(node, `bias C of ${cv.length} values for ${units} units`);
      bias = Float32Array.from(
        { length: units },
        (_, i) => beta * ((cv.length === 1 ? cv[0] : cv[i]) as number),
      );
    }
  } else ({ bias, output: out } = matmulBias(ctx, node, units));
  const q = quantizeWeight(w, [units, inF], { type: 'int8', symmetric: true });
  const inScale = ctx.quantOf(x).scale;
  const qb = quantizeBias(bias ?? new Float32Array(units), inScale, q.scales);
  if (qb.clipped) ctx.notes.push(`${node.name || out}: ${qb.clipped} bias value(s) clipped to int32`);
  const weights = ctx.constTensor(`${out}/weights`, [units, inF], TensorType.INT8, q.data as Int8Array, {
    scale: [q.scales[0] as number],
    zeroPoint: [0],
  });
  const biasT = ctx.constTensor(`${out}/bias`, [units], TensorType.INT32, qb.data, {
    scale: [qb.scales[0] as number],
    zeroPoint: [0],
  });
  const y = ctx.activation(out, node, { nhwc: false });
  const act = ctx.plan.fused.get(node)?.activation ?? ActivationFunctionType.NONE;
  ctx.builder.addOperator(
    BuiltinOperator.FULLY_CONNECTED,
    [x.tensor, weights, biasT],
    [y.tensor],
    BuiltinOptions.FullyConnectedOptions,
    new FullyConnectedOptionsT(act),
  );
}

function reshapeOp(ctx: LoweringContext, from: LValue, to: LValue): void {
  const shape = ctx.builder.tensor(to.tensor).shape;
  const shapeT = ctx.constTensor(
    `${ctx.builder.tensor(to.tensor).name}/shape`,
    [shape.length],
    TensorType.INT32,
    Int32Array.from(shape),
  );
  ctx.builder.addOperator(
    BuiltinOperator.RESHAPE,
    [from.tensor, shapeT],
    [to.tensor],
    BuiltinOptions.ReshapeOptions,
    new ReshapeOptionsT(shape),
  );
}

/** NHWC → NCHW with a TRANSPOSE, when a flatten must keep ONNX's C·H·W order. */
function toNchw(ctx: LoweringContext, x: LValue, name: string): number {
  const p = ctx.quantOf(x);
  const perm = ctx.constTensor(`${name}/perm`, [4], TensorType.INT32, Int32Array.from([0, 3, 1, 2]));
  const t = ctx.builder.addTensor({
    name: `${name}/nchw`,
    shape: x.shape,
    type: TensorType.INT8,
    quant: { scale: [p.scale], zeroPoint: [p.zeroPoint] },
  });
  ctx.builder.addOperator(
    BuiltinOperator.TRANSPOSE,
    [x.tensor, perm],
    [t],
    BuiltinOptions.TransposeOptions,
    new TransposeOptionsT(),
  );
  ctx.notes.push(
    `${name}: flattened in C·H·W order through a TRANSPOSE (the Edge TPU maps it only from runtime 14)`,
  );
  return t;
}

/** Flatten, Reshape, Squeeze, Unsqueeze → RESHAPE (or nothing but bookkeeping). */
export function lowerReshape(ctx: LoweringContext, node: NodeProto): void {
  const x = ctx.value(node.input[0] as string, node);
  const out = ctx.outputOf(node);
  const target = ctx.shapeOf(out, node);
  if (node.opType === 'Flatten' && attrInt(node, 'axis', 1) !== 1) unsupported(node, 'only Flatten(axis=1)');
  if (x.nhwc) {
    const [n, ch, h, w] = x.shape as [number, number, number, number];
    if (target.length !== 2 || target[0] !== n)
      unsupported(node, `reshaping an NCHW map to [${target.join(',')}] needs a transpose`);
    if (h * w === 1) {
      reshapeOp(ctx, x, ctx.activation(out, node, { nhwc: false }));
      return;
    }
    const readers = ctx.facts.consumers.get(out) ?? [];
    const denseOnly =
      readers.length > 0 &&
      !ctx.facts.outputs.includes(out) &&
      readers.every((r) => (r.opType === 'Gemm' || r.opType === 'MatMul') && r.input[0] === out);
    if (denseOnly) {
      reshapeOp(ctx, x, ctx.activation(out, node, { nhwc: false, hwc: [h, w, ch] }));
      return;
    }
    const nchw = toNchw(ctx, x, out);
    reshapeOp(ctx, { tensor: nchw, shape: x.shape, nhwc: false }, ctx.activation(out, node, { nhwc: false }));
    return;
  }
  if (x.hwc) unsupported(node, 'reshaping a flattened NHWC map again');
  if (target.length === 4) {
    // [N, C] → [N, C, 1, 1] (e.g. squeeze-and-excitation): the NHWC form [N, 1, 1, C] is the same data.
    if (target[2] !== 1 || target[3] !== 1)
      unsupported(node, `reshaping to an NCHW map [${target.join(',')}] needs a transpose`);
    reshapeOp(ctx, x, ctx.activation(out, node, { nhwc: true }));
    return;
  }
  reshapeOp(ctx, x, ctx.activation(out, node, { nhwc: false }));
}
