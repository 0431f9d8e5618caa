/**
 * Produce the bytes of one precision variant of the source model. Normalisation and calibration
 * are shared between variants (CPU and WebGPU int8 calibrate once).
 */
import type { ModelProto } from 'onnx-buf';
import type { Sample } from '../data/samples.ts';
import { ConverterError } from '../errors.ts';
import { serializeOnnx } from '../onnx/io.ts';
import { cloneModel, type NormalizedModel, normalizeForQuantization } from '../onnx/normalize.ts';
import { convertToFp16 } from '../passes/fp16.ts';
import { type CalibrationMethod, calibrate, type Ranges } from '../quant/calibrate.ts';
import { applyDynamic } from '../quant/dynamic.ts';
import { planStaticQuantization } from '../quant/plan.ts';
import { applyStaticQdq } from '../quant/qdq.ts';
import { applyWeightOnly } from '../quant/weight-only.ts';
import type { Precision } from './types.ts';

export interface Variant {
  bytes: Uint8Array;
  quantizedNodes: string[];
  keptFloat: Record<string, number>;
  notes: string[];
  warnings: string[];
}

export interface VariantOptions {
  method: CalibrationMethod;
  perChannel: boolean;
  reduceRange: boolean;
  onProgress?: (stage: string, done: number, total: number) => void;
}

export class VariantBuilder {
  private normalized?: Promise<NormalizedModel>;
  private readonly ranges = new Map<string, Promise<Ranges>>();

  constructor(
    private readonly source: ModelProto,
    private readonly sourceBytes: Uint8Array,
    private readonly calibration: readonly Sample[],
  ) {}

  private normal(): Promise<NormalizedModel> {
    this.normalized ??= normalizeForQuantization(this.source);
    return this.normalized;
  }

  private rangesFor(
    key: string,
    model: ModelProto,
    names: string[],
    o: VariantOptions,
    method: CalibrationMethod,
  ) {
    let r = this.ranges.get(key);
    if (!r) {
      const samples = key.startsWith('fp16') ? this.calibration.slice(0, 32) : this.calibration;
      r = calibrate(model, names, samples, {
        method,
        onProgress: (pass, done, total) =>
          o.onProgress?.(
            key.startsWith('fp16')
              ? 'checking activation ranges for fp16'
              : `calibrating (${method}, ${pass})`,
            done,
            total,
          ),
      });
      this.ranges.set(key, r);
    }
    return r;
  }

  async build(precision: Precision, o: VariantOptions): Promise<Variant> {
    if (precision === 'fp32')
      return {
        bytes: this.sourceBytes,
        quantizedNodes: [],
        keptFloat: {},
        notes: ['the source model, unchanged'],
        warnings: [],
      };
    const base = await this.normal();
    const model = cloneModel(base.model);
    const types = new Map(base.types);
    const notes = [...base.notes];
    const warnings: string[] = [];
    if (precision === 'fp16') {
      const floatValues = [...types].filter(
        ([n, t]) => t.dtype === 'float32' && !model.graph?.initializer.some((i) => i.name === n),
      );
      const ranges = await this.rangesFor(
        'fp16',
        base.model,
        floatValues.map(([n]) => n),
        o,
        'minmax',
      );
      const r = convertToFp16(model, types, { ranges });
      for (const k of r.keptFp32) notes.push(`kept fp32: ${k.op} "${k.node}" (${k.reason})`);
      const kept: Record<string, number> = {};
      for (const k of r.keptFp32) kept[k.op] = (kept[k.op] ?? 0) + 1;
      return { bytes: serializeOnnx(model), quantizedNodes: [], keptFloat: kept, notes, warnings };
    }
    if (precision === 'int8-weight-only') {
      const r = applyWeightOnly(model, { perChannel: o.perChannel });
      if (r.weightCount === 0)
        throw new ConverterError(
          'ONNX_UNSUPPORTED',
          'int8 weight-only: the model has no Conv/Gemm/MatMul with a constant weight',
        );
      return {
        bytes: serializeOnnx(model),
        quantizedNodes: r.quantizedNodes,
        keptFloat: {},
        notes,
        warnings,
      };
    }
    if (precision === 'int8-dynamic') {
      const r = applyDynamic(model, types, { reduceRange: o.reduceRange });
      if (r.quantizedNodes.length === 0)
        throw new ConverterError(
          'ONNX_UNSUPPORTED',
          'int8 dynamic covers MatMul/Gemm with constant weights and the model has none (for CNNs use --quantize static)',
        );
      return {
        bytes: serializeOnnx(model),
        quantizedNodes: r.quantizedNodes,
        keptFloat: Object.fromEntries(r.keptFloat),
        notes,
        warnings,
      };
    }
    if (precision === 'int8') {
      const plan = planStaticQuantization(model, types);
      if (plan.nodes.size === 0)
        throw new ConverterError(
          'ONNX_UNSUPPORTED',
          'static int8: the model has no node onnxruntime can quantize',
        );
      const ranges = await this.rangesFor(`int8:${o.method}`, base.model, plan.activations, o, o.method);
      const r = applyStaticQdq(model, plan, ranges, { perChannel: o.perChannel, reduceRange: o.reduceRange });
      if (r.clippedBiasValues)
        warnings.push(
          `${r.clippedBiasValues} bias value(s) exceeded int32 at scale input×weight and were clipped`,
        );
      notes.push(
        `${r.weightCount} weight(s) int8 ${o.perChannel ? 'per channel' : 'per tensor'}${o.reduceRange ? ' (7-bit, reduce_range)' : ''}, ` +
          `${r.biasCount} int32 bias(es), ${r.activationCount} activation Q/DQ pair(s), ${plan.removed.length} Relu/Clip absorbed`,
      );
      return {
        bytes: serializeOnnx(model),
        quantizedNodes: r.quantizedNodes,
        keptFloat: Object.fromEntries(plan.keptFloat),
        notes,
        warnings,
      };
    }
    throw new ConverterError('ONNX_UNSUPPORTED', `unknown precision ${precision}`);
  }
}
