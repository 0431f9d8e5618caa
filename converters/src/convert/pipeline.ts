/**
 * The conversion pipeline: check the targets can run the model, plan the artifacts per target,
 * get calibration and held-out samples (the user's, or synthetic with a loud warning), build each
 * precision, verify it against the fp32 source in onnxruntime-node and -web, and gate it.
 */
import type { PlainTensor } from '@edgefleet/bundle';
import type { ModelProto } from 'onnx-buf';
import { splitSamples, syntheticSamples } from '../data/samples.ts';
import { ConverterError } from '../errors.ts';
import { hasExternalData } from '../onnx/external.ts';
import { parseOnnx, serializeOnnx } from '../onnx/io.ts';
import { runnableModel } from '../onnx/normalize.ts';
import { floatWeightBytes, type OnnxSummary, summarizeModel } from '../onnx/summary.ts';
import { inspectKernels } from '../verify/kernels.ts';
import { checkTargetSupport, type OnnxTarget } from './support.ts';
import { knownTargets, type TargetBuilder, targetBuilder } from './targets.ts';
import {
  type ArtifactReport,
  type BuiltArtifact,
  type ConversionReport,
  type ConvertOptions,
  DEFAULT_TOLERANCES,
  type Precision,
  type QuantizeMode,
  type Tolerance,
} from './types.ts';
import { VariantBuilder } from './variants.ts';
import { referenceOutputs, toleranceMiss, verifyInRuntimes } from './verify.ts';

export const TOOL = 'edgefleet-converters 0.1.0';

export interface ConversionResult {
  summary: OnnxSummary;
  /** The user's model, as given (manifest.source describes it). */
  originalBytes: Uint8Array;
  /** The fp32 model every artifact derives from (the original, or raised to a runnable opset). */
  sourceBytes: Uint8Array;
  /** Artifacts to pack (packaged or forced), primary first per target. */
  artifacts: BuiltArtifact[];
  report: ConversionReport;
  /** Inputs of the on-device smoke test (the first held-out sample). */
  smokeInputs: Record<string, PlainTensor>;
}

interface PlannedArtifact {
  target: OnnxTarget;
  precision: Precision;
  file: string;
  requires: string[];
  fallback?: string;
  reduceRange: boolean;
}

const PRECISION_OF: Record<QuantizeMode, Precision> = {
  none: 'fp32',
  fp16: 'fp16',
  static: 'int8',
  dynamic: 'int8-dynamic',
  'weight-only': 'int8-weight-only',
};

function planArtifacts(
  targets: OnnxTarget[],
  options: ConvertOptions,
  warnings: string[],
): PlannedArtifact[] {
  const planned: PlannedArtifact[] = [];
  for (const target of targets) {
    let mode = options.quantize ?? (target === 'cpu' ? 'static' : 'fp16');
    if (target === 'webgpu' && mode === 'dynamic') {
      warnings.push(
        'webgpu: dynamic int8 runs on the CPU inside onnxruntime-web; made int8 weight-only instead',
      );
      mode = 'weight-only';
    }
    if (target === 'cpu' && mode === 'fp16')
      warnings.push('cpu: onnxruntime runs most fp16 ops through casts on CPU; expect it slower than fp32');
    const precision = PRECISION_OF[mode];
    const fp32File = `${target}/model.onnx`;
    if (precision !== 'fp32')
      planned.push({
        target,
        precision,
        file: `${target}/model-${precision}.onnx`,
        requires: target === 'webgpu' && precision === 'fp16' ? ['shader-f16'] : [],
        fallback: fp32File,
        reduceRange:
          target === 'cpu' &&
          (precision === 'int8' || precision === 'int8-dynamic') &&
          (options.reduceRange ?? true),
      });
    planned.push({ target, precision: 'fp32', file: fp32File, requires: [], reduceRange: false });
  }
  // One fp32 file serves every target: point WebGPU at the CPU copy instead of storing it twice.
  if (planned.some((p) => p.file === 'cpu/model.onnx'))
    return planned
      .filter((p) => p.file !== 'webgpu/model.onnx')
      .map((p) => (p.fallback === 'webgpu/model.onnx' ? { ...p, fallback: 'cpu/model.onnx' } : p));
  return planned;
}

function chooseSamples(
  options: ConvertOptions,
  summary: OnnxSummary,
  warnings: string[],
  needs: { calibration: boolean; verification: boolean },
) {
  const needsCalibration = needs.calibration;
  let calibration = options.calibration;
  let verification = options.verification;
  if (!calibration) {
    calibration = syntheticSamples(summary.inputs, needsCalibration ? 100 : 1, { seed: 1 });
    if (needsCalibration)
      warnings.push(
        'NO CALIBRATION DATA: int8 ranges and fp16 overflow checks used synthetic random inputs; ' +
          'accuracy on real data is unknown. Pass --calibration with representative samples.',
      );
  }
  if (!verification) {
    if (calibration.origin !== 'synthetic' && calibration.samples.length >= 20) {
      const split = splitSamples(calibration);
      calibration = split.calibration;
      verification = split.verification;
    } else if (calibration.origin !== 'synthetic') {
      verification = calibration;
      warnings.push(
        `only ${calibration.samples.length} data samples: verified on the calibration samples themselves`,
      );
    } else {
      verification = syntheticSamples(summary.inputs, needs.verification ? 100 : 1, { seed: 2 });
    }
  }
  return { calibration, verification };
}

/** Convert an ONNX model (bytes, or a parsed model with its external data inlined) for the targets. */
export async function convertModel(
  input: Uint8Array | ModelProto,
  options: ConvertOptions,
): Promise<ConversionResult> {
  const parsed = input instanceof Uint8Array ? parseOnnx(input) : input;
  if (hasExternalData(parsed))
    throw new ConverterError(
      'ONNX_UNSUPPORTED',
      'the model keeps weights in external files; load it with loadOnnxFile',
    );
  const summary = summarizeModel(parsed);
  const warnings: string[] = [];
  const notes: string[] = [];
  const runnable = runnableModel(parsed);
  const model = runnable.model;
  if (runnable.note) notes.push(runnable.note);
  const sourceBytes = input instanceof Uint8Array && model === parsed ? input : serializeOnnx(model);

  const requested = [...new Set(options.targets)];
  const extra = requested.filter((t) => t !== 'cpu' && t !== 'webgpu');
  for (const t of extra)
    if (!targetBuilder(t))
      throw new ConverterError(
        'TARGET_UNSUPPORTED',
        `unknown target "${t}" (known: ${knownTargets().join(', ')})`,
      );
  const checks = requested
    .filter((t): t is OnnxTarget => t === 'cpu' || t === 'webgpu')
    .map((t) => checkTargetSupport(summary, t));
  const failed = checks.filter((c) => !c.ok);
  if (failed.length === checks.length && extra.length === 0)
    throw new ConverterError('TARGET_UNSUPPORTED', failed.map((c) => c.message).join('; '), {
      details: { unsupported: failed.flatMap((c) => c.unsupported) },
    });
  for (const c of failed) warnings.push(`skipped target ${c.target}: ${c.message}`);
  const targets = checks.filter((c) => c.ok).map((c) => c.target as OnnxTarget);

  const planned = planArtifacts(targets, options, warnings);
  const needsData = extra.length > 0 || planned.some((p) => p.precision !== 'fp32' || p.target === 'webgpu');
  const { calibration, verification } = chooseSamples(options, summary, warnings, {
    calibration: extra.length > 0 || planned.some((p) => p.precision === 'int8' || p.precision === 'fp16'),
    verification: needsData,
  });
  const reference = needsData ? await referenceOutputs(sourceBytes, verification.samples) : [];
  const builder = new VariantBuilder(model, sourceBytes, calibration.samples);
  const sourceFloatBytes = floatWeightBytes(model);
  const method = options.method ?? 'minmax';
  const built = new Map<string, Awaited<ReturnType<VariantBuilder['build']>>>();
  const artifacts: BuiltArtifact[] = [];
  const reports: ArtifactReport[] = [];

  for (const p of planned) {
    const tolerance: Tolerance = { ...DEFAULT_TOLERANCES[p.precision], ...options.tolerances?.[p.precision] };
    const report: ArtifactReport = {
      file: p.file,
      target: p.target,
      precision: p.precision,
      status: 'packaged',
      sizeBytes: 0,
      sizeRatio: 0,
      quantizedNodes: [],
      keptFloat: {},
      runtimes: [],
      gatedOn: [],
      tolerance,
      notes: [],
      warnings: [],
    };
    reports.push(report);
    const key = `${p.precision}|${p.reduceRange}`;
    let variant = built.get(key);
    try {
      if (!variant) {
        variant = await builder.build(p.precision, {
          method,
          perChannel: options.perChannel ?? true,
          reduceRange: p.reduceRange,
          ...(options.onProgress ? { onProgress: options.onProgress } : {}),
        });
        built.set(key, variant);
      }
    } catch (error) {
      report.status = 'rejected';
      report.reason = `conversion failed: ${(error as Error).message}`;
      continue;
    }
    Object.assign(report, {
      sizeBytes: variant.bytes.byteLength,
      sizeRatio: variant.bytes.byteLength / sourceBytes.byteLength,
      ...(p.precision.startsWith('int8')
        ? { weightCoverage: 1 - floatWeightBytes(parseOnnx(variant.bytes)) / Math.max(1, sourceFloatBytes) }
        : {}),
      quantizedNodes: variant.quantizedNodes,
      keptFloat: variant.keptFloat,
      notes: variant.notes,
      warnings: variant.warnings,
    });
    const isSource = p.precision === 'fp32';
    if (!isSource || p.target === 'webgpu') {
      options.onProgress?.(`verifying ${p.file}`, 0, verification.samples.length);
      report.runtimes = await verifyInRuntimes(variant.bytes, verification.samples, reference, {
        wasm: p.target === 'webgpu' || (options.verifyWasm ?? true),
      });
      const node = report.runtimes.find((r) => r.runtime === 'onnxruntime-node');
      const wasm = report.runtimes.find((r) => r.runtime === 'onnxruntime-web-wasm');
      report.gatedOn =
        p.target === 'webgpu'
          ? ['onnxruntime-web-wasm']
          : wasm?.ok
            ? ['onnxruntime-node', 'onnxruntime-web-wasm']
            : ['onnxruntime-node'];
      if (p.target === 'cpu' && wasm && !wasm.ok)
        report.notes.push(`not runnable in onnxruntime-web: ${wasm.error}`);
      if (p.precision.startsWith('int8') && node?.ok) report.kernels = await inspectKernels(variant.bytes);
      const miss = report.gatedOn
        .map((name) =>
          toleranceMiss(
            report.runtimes.find((r) => r.runtime === name) ?? { runtime: name, ok: false, error: 'not run' },
            tolerance,
          ),
        )
        .find((m) => m !== undefined);
      if (miss) {
        report.reason = miss;
        report.status = options.force ? 'forced' : 'rejected';
        if (options.force)
          warnings.push(`${p.file} packaged despite missing its tolerance (--force): ${miss}`);
      }
    } else {
      report.notes.push('identical to the source: not re-verified');
    }
    if (report.status === 'rejected') continue;
    artifacts.push({
      bytes: variant.bytes,
      report,
      entry: {
        file: p.file,
        target: p.target,
        runtime: 'onnxruntime',
        precision: p.precision,
        minRuntimeVersion: p.precision === 'fp32' ? '1.16.0' : '1.18.0',
        requires: p.requires,
        ...(p.fallback ? { fallback: p.fallback } : {}),
      },
    });
  }
  for (const t of extra) {
    const build = await (targetBuilder(t) as TargetBuilder)({
      model,
      sourceBytes,
      summary,
      calibration,
      verification,
      reference,
      options,
    });
    artifacts.push(...build.artifacts);
    reports.push(...build.reports);
    warnings.push(...(build.warnings ?? []));
  }
  // A fallback must exist in the bundle; fp32 files always do unless they failed to verify.
  const files = new Set(artifacts.map((a) => a.entry.file));
  for (const a of artifacts) if (a.entry.fallback && !files.has(a.entry.fallback)) delete a.entry.fallback;
  if (artifacts.length === 0)
    throw new ConverterError(
      'TOLERANCE_NOT_MET',
      `no artifact passed verification: ${reports.map((r) => `${r.file}: ${r.reason}`).join('; ')}`,
    );

  const opset = summary.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version;
  const report: ConversionReport = {
    tool: TOOL,
    source: {
      sizeBytes: sourceBytes.byteLength,
      parameterCount: summary.parameterCount,
      ...(opset !== undefined ? { opset } : {}),
      ...(summary.producer ? { producer: summary.producer } : {}),
    },
    ...(extra.length > 0 || planned.some((p) => p.precision === 'int8' || p.precision === 'fp16')
      ? {
          calibration: {
            origin: calibration.origin,
            description: calibration.description,
            samples: calibration.samples.length,
            method,
            synthetic: calibration.origin === 'synthetic',
          },
        }
      : {}),
    verification: {
      origin: verification.origin,
      description: verification.description,
      samples: verification.samples.length,
      synthetic: verification.origin === 'synthetic',
    },
    targets: checks.map((c) => ({
      target: c.target,
      ok: c.ok,
      ...(c.message ? { message: c.message } : {}),
    })),
    artifacts: reports,
    warnings,
    notes,
  };
  const originalBytes =
    input instanceof Uint8Array ? input : model === parsed ? sourceBytes : serializeOnnx(parsed);
  return {
    summary,
    originalBytes,
    sourceBytes,
    artifacts,
    report,
    smokeInputs: verification.samples[0] ?? {},
  };
}
