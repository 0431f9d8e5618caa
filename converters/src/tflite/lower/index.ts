/**
 * ONNX → full-integer TFLite for the CNN/MLP op set (research §7.1): normalise the ONNX model
 * (opset 13, BatchNorm folded, Constants hoisted), learn every activation's static shape and range
 * by running it in onnxruntime-node over the calibration samples, plan fusions and int8
 * parameters, lower op by op, and write a model with int8 (or uint8) inputs and outputs.
 */
import type { PlainTensor, TensorSpec } from '@edgefleet/bundle';
import type { ModelProto } from 'onnx-buf';
import type { Sample } from '../../data/samples.ts';
import { consumersOf } from '../../onnx/graph.ts';
import { parseOnnx } from '../../onnx/io.ts';
import { normalizeForQuantization } from '../../onnx/normalize.ts';
import { openSession } from '../../onnx/runtime.ts';
import { type CalibrationMethod, calibrate, exposeTensors } from '../../quant/calibrate.ts';
import { minMax } from '../../quant/params.ts';
import { TensorType } from '../build.ts';
import { TfliteError } from '../errors.ts';
import { BuiltinOperator, BuiltinOptions, QuantizeOptionsT } from '../generated/schema_generated.ts';
import { readTflite, writeTflite } from '../read.ts';
import { opName } from '../types.ts';
import { LoweringContext, toNhwc, unsupported } from './context.ts';
import { type GraphFacts, planLowering } from './plan.ts';
import { LOWERINGS, PASS_THROUGH } from './registry.ts';

export interface TfliteConversionOptions {
  /** Type of the model's inputs and outputs; the Edge TPU takes either. Default int8. */
  io?: 'int8' | 'uint8';
  method?: CalibrationMethod;
  onProgress?: (stage: string, done: number, total: number) => void;
}

/** One input or output of the converted model, and how it relates to the ONNX tensor. */
export interface TfliteIo extends TensorSpec {
  quantization: { scale: number; zeroPoint: number };
  /** 'NHWC' when the ONNX tensor is NCHW and TFLite holds it transposed. */
  layout: 'NHWC' | 'same';
}

export interface TfliteConversion {
  bytes: Uint8Array;
  inputs: TfliteIo[];
  outputs: TfliteIo[];
  /** TFLite ops by name, e.g. { CONV_2D: 3, FULLY_CONNECTED: 2 }. */
  ops: Record<string, number>;
  notes: string[];
}

async function observe(
  model: ModelProto,
  samples: readonly Sample[],
  method: CalibrationMethod,
  onProgress: TfliteConversionOptions['onProgress'],
) {
  const graph = model.graph;
  if (!graph) throw new TfliteError('TFLITE_UNSUPPORTED', 'the ONNX model has no graph');
  const names = [...new Set(graph.node.flatMap((n) => n.output.filter(Boolean)))];
  const first = samples[0];
  if (!first)
    throw new TfliteError('TFLITE_UNSUPPORTED', 'full-integer conversion needs calibration samples');
  const shapes = new Map<string, number[]>();
  const session = await openSession(exposeTensors(model, names), { optimization: 'disabled' });
  try {
    const out = await session.run(first);
    for (const [name, t] of Object.entries(out)) {
      if (t.dtype !== 'float32') continue;
      shapes.set(name, t.shape);
    }
  } finally {
    await session.release();
  }
  const ranges = await calibrate(model, [...shapes.keys()], samples, {
    method,
    ...(onProgress
      ? {
          onProgress: (pass: string, done: number, total: number) =>
            onProgress(`calibrating (${pass})`, done, total),
        }
      : {}),
  });
  for (const input of graph.input) {
    const values = samples.map((s) => s[input.name]).filter((t): t is PlainTensor => t !== undefined);
    const sample = values[0];
    if (!sample) continue;
    if (sample.dtype !== 'float32')
      throw new TfliteError(
        'TFLITE_UNSUPPORTED',
        `input "${input.name}" is ${sample.dtype}; only float inputs are quantized`,
      );
    if (sample.shape[0] !== 1)
      throw new TfliteError('TFLITE_UNSUPPORTED', `input "${input.name}" samples must have batch 1`);
    shapes.set(input.name, sample.shape);
    let [lo, hi] = [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    for (const v of values) {
      const [a, b] = minMax(v.data as Float32Array);
      [lo, hi] = [Math.min(lo, a), Math.max(hi, b)];
    }
    ranges.set(input.name, [lo, hi]);
  }
  return { shapes, ranges };
}

/** Convert an ONNX model to full-int8 TFLite with calibration samples (batch 1 each). */
export async function convertOnnxToTflite(
  source: Uint8Array | ModelProto,
  calibration: readonly Sample[],
  options: TfliteConversionOptions = {},
): Promise<TfliteConversion> {
  const parsed = source instanceof Uint8Array ? parseOnnx(source) : source;
  const normalized = await normalizeForQuantization(parsed);
  const model = normalized.model;
  const graph = model.graph;
  if (!graph) throw new TfliteError('TFLITE_UNSUPPORTED', 'the ONNX model has no graph');
  const inits = new Map(graph.initializer.map((t) => [t.name, t]));
  const inputs = graph.input.map((v) => v.name).filter((n) => !inits.has(n));
  const { shapes, ranges } = await observe(
    model,
    calibration,
    options.method ?? 'minmax',
    options.onProgress,
  );
  const facts: GraphFacts = {
    nodes: graph.node,
    inits,
    shapes,
    ranges,
    inputs,
    outputs: graph.output.map((o) => o.name),
    consumers: consumersOf(graph),
  };
  const plan = planLowering(facts);
  const ctx = new LoweringContext(facts, plan);
  ctx.notes.push(...normalized.notes);
  const io = options.io ?? 'int8';

  const inputTensors: number[] = [];
  for (const name of inputs) {
    const shape = shapes.get(name);
    if (!shape) throw new TfliteError('TFLITE_UNSUPPORTED', `no calibration data for input "${name}"`);
    if (shape.length > 4)
      throw new TfliteError('TFLITE_UNSUPPORTED', `input "${name}" has rank ${shape.length}`);
    const node = { opType: 'input', name, output: [name] } as never;
    if (io === 'int8') {
      inputTensors.push(ctx.activation(name, node, { nhwc: shape.length === 4 }).tensor);
      continue;
    }
    const p = ctx.params(name, node);
    const raw = ctx.builder.addTensor({
      name,
      shape: shape.length === 4 ? toNhwc(shape) : shape,
      type: TensorType.UINT8,
      quant: { scale: [p.scale], zeroPoint: [p.zeroPoint + 128] },
    });
    const v = ctx.activation(name, node, { nhwc: shape.length === 4 });
    ctx.builder.tensor(v.tensor).name = `${name}_int8`;
    ctx.builder.addOperator(
      BuiltinOperator.QUANTIZE,
      [raw],
      [v.tensor],
      BuiltinOptions.QuantizeOptions,
      new QuantizeOptionsT(),
    );
    inputTensors.push(raw);
  }

  for (const [i, node] of graph.node.entries()) {
    options.onProgress?.('lowering to TFLite', i + 1, graph.node.length);
    if (plan.skipped.has(node) || PASS_THROUGH.has(node.opType)) continue;
    if (node.domain !== '' && node.domain !== 'ai.onnx') unsupported(node, `domain ${node.domain}`);
    const lower = LOWERINGS[node.opType];
    if (!lower) unsupported(node, 'no TFLite lowering for this op');
    lower(ctx, node);
  }

  const outputTensors: number[] = [];
  const outIo: TfliteIo[] = [];
  for (const name of facts.outputs) {
    const node = { opType: 'output', name, output: [name] } as never;
    const v = ctx.value(name, node);
    if (v.hwc) unsupported(node, 'a model output that is a flattened NCHW map');
    let tensor = v.tensor;
    // Pass-through ops (Identity, Dropout) leave the value under an inner name: the model's
    // output keeps the ONNX name, which is how verification and the agent match outputs.
    if (io === 'int8' && !inputTensors.includes(tensor)) ctx.builder.tensor(tensor).name = name;
    if (io === 'uint8') {
      const p = ctx.quantOf(v);
      const t = ctx.builder.tensor(v.tensor);
      t.name = `${name}_int8`;
      tensor = ctx.builder.addTensor({
        name,
        shape: t.shape,
        type: TensorType.UINT8,
        quant: { scale: [p.scale], zeroPoint: [p.zeroPoint + 128] },
      });
      ctx.builder.tensor(tensor).name = name;
      ctx.builder.addOperator(
        BuiltinOperator.QUANTIZE,
        [v.tensor],
        [tensor],
        BuiltinOptions.QuantizeOptions,
        new QuantizeOptionsT(),
      );
    }
    outputTensors.push(tensor);
  }

  const tflite = ctx.builder.finish(inputTensors, outputTensors, {
    description: `edgefleet: full-integer ${io} conversion of an ONNX model`,
    minRuntimeVersion: '2.4.0',
  });
  const bytes = writeTflite(tflite);
  readTflite(bytes); // our own output must pass our own checks
  const describe = (index: number, onnxName: string): TfliteIo => {
    const t = ctx.builder.tensor(index);
    const q = t.quantization;
    return {
      name: String(t.name),
      dtype: t.type === TensorType.UINT8 ? 'uint8' : 'int8',
      shape: [...t.shape],
      quantization: { scale: q?.scale[0] ?? 1, zeroPoint: Number(q?.zeroPoint[0] ?? 0) },
      layout: (shapes.get(plan.canonical(onnxName))?.length ?? 0) === 4 ? 'NHWC' : 'same',
    };
  };
  for (const [k, name] of facts.outputs.entries()) outIo.push(describe(outputTensors[k] as number, name));
  const ops: Record<string, number> = {};
  for (const op of tflite.subgraphs[0]?.operators ?? []) {
    const code = opName(tflite.operatorCodes[op.opcodeIndex]?.builtinCode ?? 0);
    ops[code] = (ops[code] ?? 0) + 1;
  }
  return {
    bytes,
    inputs: inputs.map((name, k) => describe(inputTensors[k] as number, name)),
    outputs: outIo,
    ops,
    notes: ctx.notes,
  };
}
