/**
 * The ONNX ops the TFLite lowering handles, with the static checks that can be made before any
 * calibration run (used by the Edge TPU lint of an ONNX model): a node failing here names itself
 * and why, instead of the conversion failing halfway.
 */
import type { NodeProto, TensorProto } from 'onnx-buf';
import { attrInt, getAttr } from '../../onnx/graph.ts';
import type { LoweringContext } from './context.ts';
import { lowerConv, lowerMean, lowerPad, lowerPool } from './conv.ts';
import { lowerDense, lowerReshape } from './dense.ts';
import { lowerBinary, lowerConcat, lowerSoftmax, lowerUnary } from './elementwise.ts';
import { activationOf } from './plan.ts';

export type Lowering = (ctx: LoweringContext, node: NodeProto) => void;

export const LOWERINGS: Record<string, Lowering> = {
  Conv: lowerConv,
  MaxPool: lowerPool,
  AveragePool: lowerPool,
  GlobalAveragePool: lowerMean,
  ReduceMean: lowerMean,
  Pad: lowerPad,
  Gemm: lowerDense,
  MatMul: lowerDense,
  Flatten: lowerReshape,
  Reshape: lowerReshape,
  Squeeze: lowerReshape,
  Unsqueeze: lowerReshape,
  Add: lowerBinary,
  Sub: lowerBinary,
  Mul: lowerBinary,
  Div: lowerBinary,
  Relu: lowerUnary,
  Clip: lowerUnary,
  Sigmoid: lowerUnary,
  Tanh: lowerUnary,
  HardSwish: lowerUnary,
  Softmax: lowerSoftmax,
  Concat: lowerConcat,
};

/** Ops that vanish in the lowering (inference-time no-ops). */
export const PASS_THROUGH = new Set(['Identity', 'Dropout']);

const text = (node: NodeProto, name: string): string | undefined => {
  const a = getAttr(node, name);
  return a ? new TextDecoder().decode(a.s) : undefined;
};

/** Why this node cannot be lowered, judging from the node and its constants alone; undefined if it may. */
export function staticProblem(node: NodeProto, inits: Map<string, TensorProto>): string | undefined {
  if (node.domain !== '' && node.domain !== 'ai.onnx')
    return `operators of domain ${node.domain} have no TFLite lowering`;
  if (PASS_THROUGH.has(node.opType)) return undefined;
  if (!LOWERINGS[node.opType]) return `${node.opType} has no TFLite lowering for the Edge TPU`;
  switch (node.opType) {
    case 'Conv': {
      const w = inits.get(node.input[1] ?? '');
      if (!w) return 'the weights must be constant';
      if (w.dims.length !== 4) return `only 2-D convolutions (weights of rank ${w.dims.length})`;
      const group = attrInt(node, 'group', 1);
      if (group !== 1 && Number(w.dims[1]) !== 1) return `grouped convolution (group ${group})`;
      return undefined;
    }
    case 'Gemm':
      if (attrInt(node, 'transA', 0) !== 0) return 'transA=1';
      return inits.has(node.input[1] ?? '') ? undefined : 'the weights (B) must be constant';
    case 'MatMul':
      return inits.has(node.input[1] ?? '')
        ? undefined
        : 'multiplying two activations (only constant weights)';
    case 'Clip':
      return activationOf(node, inits) === undefined
        ? 'only Clip(0, 6), Clip(-1, 1) and Clip(0, ∞)'
        : undefined;
    case 'Pad':
      return (text(node, 'mode') ?? 'constant') === 'constant' ? undefined : `${text(node, 'mode')} padding`;
    case 'MaxPool':
    case 'AveragePool':
      if (attrInt(node, 'ceil_mode', 0) === 1) return 'ceil_mode=1';
      return node.output.filter(Boolean).length > 1 ? 'the indices output' : undefined;
    case 'Div':
      return inits.has(node.input[1] ?? '') ? undefined : 'division by an activation';
    default:
      return undefined;
  }
}
