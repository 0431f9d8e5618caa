/**
 * Raise the ai.onnx opset of old models (PyTorch exports at opset 6–12) to 13, which quantization
 * needs for per-channel `axis` on Q/DQ. Only ops whose meaning is unchanged, or whose change is a
 * mechanical attribute → input move, are accepted; anything else is refused by name.
 */
import type { ModelProto, NodeProto } from 'onnx-buf';
import { ConverterError } from '../errors.ts';
import { type GraphProto, getAttr, NameScope, opsetOf, removeAttr, visitGraphs } from './graph.ts';
import { floatTensor, int64Tensor } from './tensor.ts';

/** Ranks declared in the graph (inputs, outputs, value_info): enough when ORT cannot load the model yet. */
export function declaredRanks(model: ModelProto): Map<string, number> {
  const ranks = new Map<string, number>();
  const g = model.graph;
  for (const v of g ? [...g.input, ...g.output, ...g.valueInfo] : [])
    if (v.type?.value.case === 'tensorType' && v.type.value.value.shape)
      ranks.set(v.name, v.type.value.value.shape.dim.length);
  for (const t of g?.initializer ?? []) ranks.set(t.name, t.dims.length);
  return ranks;
}

/** Ops whose behaviour for inference is the same from opset 6 to 13 (types widened only). */
const UNCHANGED = new Set(
  (
    'Abs Acos Acosh And ArgMax ArgMin Asin Asinh Atan Atanh AveragePool Cast Ceil Concat Constant ConstantOfShape ' +
    'Conv ConvTranspose Cos Cosh DepthToSpace DequantizeLinear Div Elu Equal Erf Exp Expand Flatten Floor GRU Gather ' +
    'GatherElements Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater HardSigmoid Hardmax Identity If ' +
    'InstanceNormalization IsNaN LRN LSTM LeakyRelu Less Log Loop LpNormalization LpPool MatMul Max MaxPool Mean Min ' +
    'Mul Neg Not OneHot Or Pow PRelu QuantizeLinear RNN Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ' +
    'ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSumSquare Relu Reshape Selu Shape Sigmoid Sign Sin ' +
    'Sinh Size Softplus Softsign SpaceToDepth Sqrt Sub Sum Tan Tanh Tile Transpose Where Xor Add BatchNormalization ' +
    'Dropout Clip Pad Squeeze Unsqueeze ReduceSum Split Softmax LogSoftmax'
  ).split(' '),
);

export interface UpgradeResult {
  from: number;
  to: number;
  changes: string[];
}

/**
 * Upgrade in place to `target` (default 13) when the model is older; `rankOf` gives a value's rank
 * when known (Softmax before 13 flattened to 2-D, which equals the new meaning only on the last axis).
 */
export function upgradeOpset(
  model: ModelProto,
  rankOf: (name: string) => number | undefined,
  target = 13,
): UpgradeResult {
  const from = opsetOf(model, '') ?? 1;
  if (from >= target) return { from, to: from, changes: [] };
  if (from < 6)
    throw new ConverterError(
      'ONNX_UNSUPPORTED',
      `opset ${from} is too old to convert; re-export with opset ≥ 13`,
    );
  const names = new NameScope(model);
  const changes: string[] = [];
  const refuse = (n: NodeProto, why: string) => {
    throw new ConverterError(
      'ONNX_UNSUPPORTED',
      `cannot raise opset ${from} → ${target}: ${n.opType} "${n.name}" ${why}; re-export the model with opset ≥ ${target}`,
    );
  };
  visitGraphs(model.graph as GraphProto, (graph) => {
    for (const n of graph.node) {
      if (n.domain !== '' && n.domain !== 'ai.onnx') continue;
      if (!UNCHANGED.has(n.opType)) refuse(n, 'changed meaning between those opsets');
      upgradeNode(graph, n, from, names, rankOf, refuse, changes);
    }
  });
  const o = model.opsetImport.find((x) => x.domain === '' || x.domain === 'ai.onnx');
  if (o) o.version = BigInt(target);
  if (model.irVersion < 7n) model.irVersion = 7n;
  return { from, to: target, changes };
}

function constInput(
  graph: GraphProto,
  names: NameScope,
  base: string,
  t: ReturnType<typeof int64Tensor>,
): string {
  t.name = names.fresh(base);
  graph.initializer.push(t);
  return t.name;
}

function upgradeNode(
  graph: GraphProto,
  n: NodeProto,
  from: number,
  names: NameScope,
  rankOf: (name: string) => number | undefined,
  refuse: (n: NodeProto, why: string) => never,
  changes: string[],
): void {
  const ints = (name: string) => getAttr(n, name)?.ints.map(Number);
  switch (n.opType) {
    case 'Gemm':
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
      // Legacy broadcast: suffix matching equals numpy broadcasting unless an axis is given.
      if (getAttr(n, 'axis')) refuse(n, 'uses legacy broadcasting with an axis');
      if (getAttr(n, 'broadcast')) {
        removeAttr(n, 'broadcast');
        changes.push(`${n.opType}: dropped legacy "broadcast"`);
      }
      break;
    case 'BatchNormalization':
      if (n.output.filter((o) => o !== '').length > 1) refuse(n, 'computes training statistics');
      if (getAttr(n, 'is_test') && getAttr(n, 'is_test')?.i === 0n && from < 7)
        refuse(n, 'is in training mode');
      if (getAttr(n, 'spatial') && getAttr(n, 'spatial')?.i !== 1n) refuse(n, 'is not spatial');
      removeAttr(n, 'is_test');
      removeAttr(n, 'spatial');
      removeAttr(n, 'consumed_inputs');
      break;
    case 'Dropout':
      if (n.output.filter((o) => o !== '').length > 1) refuse(n, 'exposes its mask');
      n.opType = 'Identity';
      n.attribute = [];
      n.input = n.input.slice(0, 1);
      changes.push('Dropout → Identity (inference)');
      break;
    case 'Clip':
      if (from < 11) {
        const lo = getAttr(n, 'min')?.f ?? -3.4028234663852886e38;
        const hi = getAttr(n, 'max')?.f ?? 3.4028234663852886e38;
        n.attribute = [];
        n.input = [
          n.input[0] as string,
          constInput(graph, names, 'clip_min', floatTensor('', [], Float32Array.of(lo))),
          constInput(graph, names, 'clip_max', floatTensor('', [], Float32Array.of(hi))),
        ];
      }
      break;
    case 'Pad':
      if (from < 11) {
        const pads = ints('pads') ?? ints('paddings') ?? [];
        const value = getAttr(n, 'value')?.f ?? 0;
        const mode = getAttr(n, 'mode');
        n.attribute = mode ? [mode] : [];
        n.input = [
          n.input[0] as string,
          constInput(graph, names, 'pads', int64Tensor('', pads)),
          constInput(graph, names, 'pad_value', floatTensor('', [], Float32Array.of(value))),
        ];
      }
      break;
    case 'Squeeze':
    case 'Unsqueeze':
    case 'ReduceSum':
      moveIntsToInput(graph, n, 'axes', names);
      break;
    case 'Split': {
      const split = ints('split');
      removeAttr(n, 'split');
      if (split) n.input = [n.input[0] as string, constInput(graph, names, 'split', int64Tensor('', split))];
      break;
    }
    case 'Softmax':
    case 'LogSoftmax': {
      const rank = rankOf(n.input[0] as string);
      const axis = Number(getAttr(n, 'axis')?.i ?? 1n);
      if (rank === undefined || (axis !== rank - 1 && axis !== -1))
        refuse(n, `flattens its input to 2-D around axis ${axis} (rank ${rank ?? 'unknown'})`);
      break;
    }
    case 'PRelu': {
      // Before 7 a [C] slope applied per channel (dim 1); numpy broadcasting needs it as [C, 1, 1…].
      const slope = graph.initializer.find((t) => t.name === n.input[1]);
      const rank = rankOf(n.input[0] as string);
      if (from >= 7 || !slope || slope.dims.length !== 1 || slope.dims[0] === 1n) break;
      if (rank === undefined) refuse(n, 'has a per-channel slope on an input of unknown rank');
      if ((rank as number) > 2)
        slope.dims = [slope.dims[0] as bigint, ...new Array((rank as number) - 2).fill(1n)];
      break;
    }
    case 'MaxPool':
      if (n.output.filter((o) => o !== '').length > 1) refuse(n, 'returns indices');
      break;
    default:
      removeAttr(n, 'consumed_inputs');
  }
}

function moveIntsToInput(graph: GraphProto, n: NodeProto, attr: string, names: NameScope): void {
  const a = getAttr(n, attr);
  if (!a) return;
  removeAttr(n, attr);
  n.input = [n.input[0] as string, constInput(graph, names, attr, int64Tensor('', a.ints.map(Number)))];
}
