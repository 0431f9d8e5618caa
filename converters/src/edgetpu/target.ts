/**
 * The `edgetpu` conversion target: the fp32 ONNX model lowered to full-int8 TFLite (int8 or uint8
 * I/O), verified against fp32 in the TFLite interpreter, linted against the Edge TPU rules, and
 * compiled by `edgetpu_compiler` when it is on PATH. The full-int8 file is the CPU twin
 * (target `tflite`): it runs anywhere TFLite does and is what a Coral device falls back to. The
 * compiled `_edgetpu.tflite` (target `edgetpu`, requires `edgetpu`) names the twin as its fallback.
 * Without the compiler the twin alone is packaged and the report says compilation is pending.
 */
import type { PlainTensor, TensorSpec } from '@edgefleet/bundle';
import { registerTarget, type TargetBuild, type TargetContext } from '../convert/targets.ts';
import {
  type ArtifactReport,
  type BuiltArtifact,
  DEFAULT_TOLERANCES,
  type EdgeTpuReport,
  type RuntimeResult,
  type Tolerance,
} from '../convert/types.ts';
import { toleranceMiss } from '../convert/verify.ts';
import { floatWeightBytes } from '../onnx/summary.ts';
import { TensorType } from '../tflite/generated/schema_generated.ts';
import { convertOnnxToTflite, type TfliteConversion, type TfliteIo } from '../tflite/lower/index.ts';
import { readTflite } from '../tflite/read.ts';
import { runTfliteFloat } from '../tflite/verify.ts';
import { OutputComparison, worstOf } from '../verify/metrics.ts';
import { type CompileResult, compileForEdgeTpu, findEdgeTpuCompiler } from './compiler.ts';
import { compiledMismatch, inspectEdgeTpu } from './inspect.ts';
import { describeLint, lintEdgeTpu } from './lint.ts';

/** Bundle I/O specs of a TFLite artifact (NHWC int8, with quantization). */
const specs = (io: TfliteIo[]): TensorSpec[] =>
  io.map((t) => ({ name: t.name, shape: t.shape, dtype: t.dtype, quantization: t.quantization }));

function verify(conv: TfliteConversion, ctx: TargetContext): RuntimeResult {
  try {
    const outputs = runTfliteFloat(conv.bytes, conv, ctx.verification.samples);
    const comparison = new OutputComparison();
    for (const [i, ref] of ctx.reference.entries()) {
      const wanted = Object.fromEntries(
        conv.outputs.map((o) => {
          const t = ref[o.name];
          if (!t) throw new Error(`the TFLite output "${o.name}" is not an output of the ONNX model`);
          return [o.name, t];
        }),
      );
      comparison.add(wanted, outputs[i] as Record<string, PlainTensor>);
    }
    const metrics = comparison.result();
    return { runtime: 'tflite', ok: true, worst: worstOf(metrics), outputs: metrics };
  } catch (error) {
    return { runtime: 'tflite', ok: false, error: (error as Error).message };
  }
}

/** Share of the source's float weight bytes the TFLite model no longer stores as float. */
function weightCoverage(bytes: Uint8Array, sourceFloatBytes: number): number {
  const model = readTflite(bytes);
  let float = 0;
  for (const t of model.subgraphs.flatMap((g) => g.tensors))
    if (t.type === TensorType.FLOAT32) float += model.buffers[t.buffer]?.data.length ?? 0;
  return 1 - float / Math.max(1, sourceFloatBytes);
}

export async function buildEdgeTpuTarget(ctx: TargetContext): Promise<TargetBuild> {
  const io = ctx.options.tfliteIo ?? 'int8';
  const precision = io === 'uint8' ? 'uint8' : 'int8';
  const twinFile = `edgetpu/model_${precision}.tflite`;
  const compiledFile = `edgetpu/model_${precision}_edgetpu.tflite`;
  const tolerance: Tolerance = { ...DEFAULT_TOLERANCES.int8, ...ctx.options.tolerances?.int8 };
  const report: ArtifactReport = {
    file: twinFile,
    target: 'tflite',
    precision,
    status: 'packaged',
    sizeBytes: 0,
    sizeRatio: 0,
    quantizedNodes: [],
    keptFloat: {},
    runtimes: [],
    gatedOn: ['tflite'],
    tolerance,
    notes: ['the CPU twin of the Edge TPU model: full int8, runs on the CPU through TFLite'],
    warnings: [],
  };
  let conv: TfliteConversion;
  try {
    conv = await convertOnnxToTflite(ctx.model, ctx.calibration.samples, {
      io,
      ...(ctx.options.method ? { method: ctx.options.method } : {}),
      ...(ctx.options.onProgress ? { onProgress: ctx.options.onProgress } : {}),
    });
  } catch (error) {
    report.status = 'rejected';
    report.reason = `conversion to full-int8 TFLite failed: ${(error as Error).message}`;
    return { artifacts: [], reports: [report] };
  }
  const bytes = conv.bytes;
  Object.assign(report, {
    sizeBytes: bytes.byteLength,
    sizeRatio: bytes.byteLength / ctx.sourceBytes.byteLength,
    weightCoverage: weightCoverage(bytes, floatWeightBytes(ctx.model)),
  });
  report.notes.push(
    ...conv.notes,
    `TFLite ops: ${Object.entries(conv.ops)
      .map(([op, n]) => `${op}×${n}`)
      .join(', ')}`,
  );
  ctx.options.onProgress?.(`verifying ${twinFile}`, 0, ctx.verification.samples.length);
  const result = verify(conv, ctx);
  report.runtimes = [result];
  const miss = toleranceMiss(result, tolerance);
  const warnings: string[] = [];
  if (miss) {
    report.reason = miss;
    report.status = ctx.options.force ? 'forced' : 'rejected';
    if (ctx.options.force)
      warnings.push(`${twinFile} packaged despite missing its tolerance (--force): ${miss}`);
  }

  const lint = lintEdgeTpu(bytes);
  const edgetpu: EdgeTpuReport = {
    summary: lint.summary,
    mappedOps: lint.mapped,
    totalOps: lint.total,
    ...(lint.firstCpuOp ? { firstCpuOp: lint.firstCpuOp } : {}),
    minRuntime: lint.minRuntime,
    compilation: 'pending',
    compilationMessage: '',
  };
  report.edgetpu = edgetpu;
  report.notes.push(`Edge TPU lint: ${describeLint(lint)}`);
  if (lint.firstCpuOp) report.warnings.push(`not every op maps to the Edge TPU: ${describeLint(lint)}`);
  if (report.status === 'rejected') {
    edgetpu.compilationMessage = 'not compiled: the full-int8 model missed its tolerance';
    return { artifacts: [], reports: [report], warnings };
  }

  const scale = Math.max(...conv.outputs.map((o) => o.quantization.scale));
  const twinOutputs = (inputs: Record<string, PlainTensor>) =>
    runTfliteFloat(bytes, conv, [inputs])[0] as Record<string, PlainTensor>;
  const entry = { inputs: specs(conv.inputs), outputs: specs(conv.outputs) };
  const artifacts: BuiltArtifact[] = [
    {
      bytes,
      report,
      entry: {
        file: twinFile,
        target: 'tflite',
        runtime: 'tflite',
        precision,
        minRuntimeVersion: '2.4.0',
        ...entry,
      },
      // Another TFLite build may round one step differently; two steps of the coarsest output.
      smoke: async (inputs) => ({
        outputs: twinOutputs(inputs),
        tolerance: { maxAbs: 2 * scale + 1e-6, minCosine: 0.99 },
      }),
    },
  ];
  const reports = [report];

  const compiler = await findEdgeTpuCompiler();
  if (!compiler) {
    edgetpu.compilationMessage =
      `edgetpu_compiler is not on PATH, so Edge TPU compilation is pending: packaged the CPU twin ${twinFile}, ` +
      'which runs on the CPU (also on a Coral device). Compile it with edgetpu_compiler on an x86-64 Debian host ' +
      'and publish both files (edgefleet publish model.tflite --edgetpu model_edgetpu.tflite).';
    warnings.push(`edgetpu: ${edgetpu.compilationMessage}`);
    return { artifacts, reports, warnings };
  }
  let compiled: CompileResult;
  try {
    ctx.options.onProgress?.('compiling for the Edge TPU', 0, 1);
    compiled = await compileForEdgeTpu(bytes, compiler, { minRuntimeVersion: lint.minRuntime });
  } catch (error) {
    edgetpu.compilation = 'failed';
    edgetpu.compilationMessage = `${(error as Error).message}; packaged the CPU twin ${twinFile} only`;
    warnings.push(`edgetpu: ${edgetpu.compilationMessage}`);
    return { artifacts, reports, warnings };
  }
  const log = compiled.log;
  edgetpu.compiler = {
    path: compiler,
    ...(log.compilerVersion ? { version: log.compilerVersion } : {}),
    ...(log.opsOnEdgeTpu !== undefined ? { opsOnEdgeTpu: log.opsOnEdgeTpu } : {}),
    ...(log.opsOnCpu !== undefined ? { opsOnCpu: log.opsOnCpu } : {}),
    ...(log.onChipMemoryUsed ? { onChipMemoryUsed: log.onChipMemoryUsed } : {}),
    ...(log.offChipMemoryUsed ? { offChipMemoryUsed: log.offChipMemoryUsed } : {}),
  };
  const compiledReport: ArtifactReport = {
    ...report,
    file: compiledFile,
    target: 'edgetpu',
    runtimes: [],
    gatedOn: [],
    notes: [
      `compiled by edgetpu_compiler ${log.compilerVersion ?? ''}`.trim(),
      'cannot run without an Edge TPU: checked structurally; expect its outputs within 1–2 quantization ' +
        `steps of the CPU twin ${twinFile}`,
    ],
    warnings: [],
    edgetpu: { ...edgetpu },
  };
  let why: string | undefined;
  let minRuntimeVersion = lint.minRuntime;
  try {
    const inspection = inspectEdgeTpu(compiled.bytes);
    minRuntimeVersion = inspection.minRuntimeVersion;
    if (!inspection.compiled) why = 'the compiled file holds no edgetpu-custom-op';
    else why = compiledMismatch(compiled.bytes, bytes);
    compiledReport.sizeBytes = compiled.bytes.byteLength;
    compiledReport.sizeRatio = compiled.bytes.byteLength / ctx.sourceBytes.byteLength;
    compiledReport.notes.push(
      `${inspection.edgeTpuOps.length} Edge TPU op(s), ${inspection.cpuOps.length} op(s) left on the CPU, ` +
        `min runtime ${inspection.minRuntimeVersion}, ${inspection.parameterBytes} parameter bytes` +
        (inspection.streamsParameters ? ' (over the 8 MiB on-chip cache: streamed, slower)' : ''),
    );
  } catch (error) {
    why = `the compiled file is unreadable: ${(error as Error).message}`;
  }
  const logCounts =
    log.opsOnEdgeTpu !== undefined
      ? `; the compiler maps ${log.opsOnEdgeTpu} of ${log.totalOps ?? '?'} ops`
      : '';
  if (why) {
    compiledReport.status = 'rejected';
    compiledReport.reason = why;
    edgetpu.compilation = 'failed';
    edgetpu.compilationMessage = `edgetpu_compiler ran but its output was refused: ${why}; packaged the CPU twin ${twinFile} only`;
    compiledReport.edgetpu = { ...edgetpu };
    warnings.push(`edgetpu: ${edgetpu.compilationMessage}`);
    return { artifacts, reports: [...reports, compiledReport], warnings };
  }
  edgetpu.compilation = 'compiled';
  edgetpu.compilationMessage = `compiled to ${compiledFile}${logCounts}; ${twinFile} is its CPU fallback`;
  compiledReport.edgetpu = { ...edgetpu };
  artifacts.unshift({
    bytes: compiled.bytes,
    report: compiledReport,
    entry: {
      file: compiledFile,
      target: 'edgetpu',
      runtime: 'tflite',
      precision,
      minRuntimeVersion: String(minRuntimeVersion),
      requires: ['edgetpu'],
      fallback: twinFile,
      ...entry,
    },
    // The Edge TPU's arithmetic differs slightly from TFLite's reference kernels.
    smoke: async (inputs) => ({
      outputs: twinOutputs(inputs),
      tolerance: { maxAbs: 3 * scale + 1e-6, minCosine: 0.98 },
    }),
  });
  return { artifacts, reports: [compiledReport, ...reports], warnings };
}

registerTarget('edgetpu', buildEdgeTpuTarget);
