/**
 * State shared by the op lowerings: which TFLite tensor holds each ONNX value and in what layout,
 * constant access, and tensor creation with the planned int8 parameters.
 *
 * Layout: ONNX activations of rank 4 are NCHW; TFLite's are NHWC. A value with `nhwc` set holds the
 * ONNX tensor permuted to NHWC. No TRANSPOSE is inserted between ops (the Edge TPU maps them only
 * on recent runtimes): axes are remapped and weights permuted instead. A flatten of an NHWC tensor
 * keeps TFLite's H·W·C order and records it in `hwc`, so the fully-connected layer that reads it
 * takes its weight columns in that order.
 */
import type { NodeProto, TensorProto } from 'onnx-buf';
import { readFloats, readInts } from '../../onnx/tensor.ts';
import type { QuantParams } from '../../quant/params.ts';
import { type TensorQuant, TensorType, TfliteModelBuilder } from '../build.ts';
import { TfliteError } from '../errors.ts';
import type { GraphFacts, LoweringPlan } from './plan.ts';

export interface LValue {
  tensor: number;
  /** The ONNX (logical) shape. */
  shape: number[];
  nhwc: boolean;
  /** Set when this is a flatten of an NHWC [1, H, W, C] tensor in H·W·C order. */
  hwc?: [number, number, number];
}

/** NCHW → NHWC dims. */
export const toNhwc = (s: readonly number[]): number[] => [s[0] ?? 1, s[2] ?? 1, s[3] ?? 1, s[1] ?? 1];
/** An ONNX axis of a rank-4 NCHW tensor → the same axis in NHWC. */
export const nhwcAxis = (axis: number): number => [0, 3, 1, 2][axis < 0 ? axis + 4 : axis] as number;

export function unsupported(node: NodeProto, why: string): never {
  throw new TfliteError(
    'TFLITE_UNSUPPORTED',
    `${node.opType} node "${node.name || node.output[0]}": ${why}`,
    {
      details: { node: node.name || node.output[0], op: node.opType },
    },
  );
}

export class LoweringContext {
  readonly builder = new TfliteModelBuilder();
  readonly values = new Map<string, LValue>();
  readonly notes: string[] = [];

  constructor(
    readonly facts: GraphFacts,
    readonly plan: LoweringPlan,
  ) {}

  /** The value an ONNX name refers to (after aliases). */
  value(name: string, node: NodeProto): LValue {
    const v = this.values.get(this.plan.canonical(name));
    if (!v)
      unsupported(
        node,
        `input "${name}" is not an activation this converter produced (a constant where data was expected?)`,
      );
    return v;
  }

  constant(name: string | undefined): TensorProto | undefined {
    return name ? this.facts.inits.get(this.plan.canonical(name)) : undefined;
  }

  floats(name: string | undefined, node: NodeProto): Float32Array {
    const t = this.constant(name);
    if (!t) unsupported(node, `expects "${name}" to be a constant`);
    return readFloats(t);
  }

  ints(name: string | undefined, node: NodeProto): number[] {
    const t = this.constant(name);
    if (!t) unsupported(node, `expects "${name}" to be a constant`);
    return readInts(t);
  }

  shapeOf(name: string, node: NodeProto): number[] {
    const s = this.facts.shapes.get(this.plan.canonical(name));
    if (!s) unsupported(node, `the shape of "${name}" is unknown`);
    return s;
  }

  params(name: string, node: NodeProto): QuantParams {
    const p = this.plan.params.get(this.plan.canonical(name));
    if (!p) unsupported(node, `no calibration range for "${name}"`);
    return p;
  }

  /** The node's output name after fusion (a fused Relu's output). */
  outputOf(node: NodeProto): string {
    return this.plan.fused.get(node)?.output ?? (node.output[0] as string);
  }

  /** A new int8 activation tensor for ONNX value `name`, registered as its value. */
  activation(
    name: string,
    node: NodeProto,
    layout: { nhwc: boolean; hwc?: [number, number, number] },
  ): LValue {
    const shape = this.shapeOf(name, node);
    const p = this.params(name, node);
    const tfliteShape = layout.nhwc
      ? toNhwc(shape)
      : layout.hwc
        ? [shape[0] ?? 1, shape.slice(1).reduce((a, b) => a * b, 1)]
        : shape;
    const tensor = this.builder.addTensor({
      name,
      shape: tfliteShape,
      type: TensorType.INT8,
      quant: { scale: [p.scale], zeroPoint: [p.zeroPoint] },
    });
    const v: LValue = { tensor, shape, nhwc: layout.nhwc, ...(layout.hwc ? { hwc: layout.hwc } : {}) };
    this.values.set(this.plan.canonical(name), v);
    return v;
  }

  /** A constant tensor. */
  constTensor(
    name: string,
    shape: number[],
    type: TensorType,
    data: Int8Array | Int32Array | Uint8Array,
    quant?: TensorQuant,
  ): number {
    return this.builder.addTensor({ name, shape, type, data, ...(quant ? { quant } : {}) });
  }

  /** Quant params of the TFLite tensor holding a value. */
  quantOf(v: LValue): QuantParams {
    const q = this.builder.tensor(v.tensor).quantization;
    return { scale: q?.scale[0] ?? 1, zeroPoint: Number(q?.zeroPoint[0] ?? 0) };
  }
}
