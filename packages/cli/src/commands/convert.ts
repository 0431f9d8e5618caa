/**
 * `edgefleet convert IN.onnx --target cpu|webgpu|edgetpu|all -o OUT.efb`: artifacts per target, each
 * verified against the fp32 source, signed into a bundle; a table (or --json) of what was packed.
 */
import { writeFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { type Command, optionalInt, optionalString, UsageError } from '../command.ts';
import { formatBytes, formatTable } from '../table.ts';
import { defaultKeyPath, loadSigningKey } from './keys.ts';

type Report = import('@edgefleet/converters').ArtifactReport;

const QUANTIZE = ['none', 'dynamic', 'static', 'fp16', 'weight-only'] as const;
const METHODS = ['minmax', 'percentile', 'entropy'] as const;

function oneOf<T extends string>(
  ctx: Parameters<Command['run']>[0],
  flag: string,
  allowed: readonly T[],
): T | undefined {
  const v = optionalString(ctx, flag);
  if (v !== undefined && !allowed.includes(v as T))
    throw new UsageError(`--${flag} must be one of ${allowed.join(', ')}, got "${v}"`);
  return v as T | undefined;
}

function numberList(ctx: Parameters<Command['run']>[0], flag: string): number[] | undefined {
  const v = optionalString(ctx, flag);
  if (v === undefined) return undefined;
  const list = v.split(',').map((x) => Number(x.trim()));
  if (list.length === 0 || list.some((x) => !Number.isFinite(x)))
    throw new UsageError(`--${flag} must be comma-separated numbers, got "${v}"`);
  return list;
}

const pct = (v: number | null | undefined) =>
  v === null || v === undefined ? '-' : `${(v * 100).toFixed(1)}%`;

function worst(r: Report) {
  const gated = r.runtimes.filter((x) => r.gatedOn.includes(x.runtime) && x.worst);
  if (gated.length === 0) return undefined;
  return {
    relRmse: Math.max(...gated.map((x) => x.worst?.relRmse ?? 0)),
    cosine: Math.min(...gated.map((x) => x.worst?.cosine ?? 1)),
    top1: gated.some((x) => x.worst?.top1Agreement !== null)
      ? Math.min(...gated.map((x) => x.worst?.top1Agreement ?? 1))
      : null,
  };
}

export const convertCommand: Command = {
  name: 'convert',
  summary: 'Convert an ONNX model into verified CPU/WebGPU/Edge TPU artifacts in a signed bundle',
  usage:
    'convert IN.onnx --target cpu|webgpu|edgetpu|all [--quantize none|dynamic|static|fp16|weight-only] [--calibration F] ' +
    '[--tflite-io int8|uint8] ' +
    '[--reference F] [--method minmax|percentile|entropy] [--key FILE] [--force] [--name N] [--version V] -o OUT.efb',
  options: {
    target: { type: 'string' },
    quantize: { type: 'string' },
    calibration: { type: 'string' },
    reference: { type: 'string' },
    method: { type: 'string' },
    key: { type: 'string' },
    force: { type: 'boolean', default: false },
    out: { type: 'string', short: 'o' },
    name: { type: 'string' },
    version: { type: 'string' },
    description: { type: 'string' },
    labels: { type: 'string' },
    limit: { type: 'string' },
    'per-tensor': { type: 'boolean', default: false },
    'reduce-range': { type: 'string' },
    'no-wasm': { type: 'boolean', default: false },
    'tflite-io': { type: 'string' },
    width: { type: 'string' },
    height: { type: 'string' },
    layout: { type: 'string' },
    channels: { type: 'string' },
    mean: { type: 'string' },
    std: { type: 'string' },
    'pixel-range': { type: 'string' },
  },
  async run(ctx) {
    const [input] = ctx.positionals;
    if (!input) throw new UsageError('convert needs the .onnx file');
    const out = optionalString(ctx, 'out');
    if (!out) throw new UsageError('-o OUT.efb is required');
    const target = optionalString(ctx, 'target');
    if (!target) throw new UsageError('--target cpu|webgpu|all is required (or a comma list of targets)');
    const quantize = oneOf(ctx, 'quantize', QUANTIZE);
    const method = oneOf(ctx, 'method', METHODS);
    const reduceRange = oneOf(ctx, 'reduce-range', ['on', 'off'] as const);
    const layout = oneOf(ctx, 'layout', ['NCHW', 'NHWC'] as const);
    const channels = oneOf(ctx, 'channels', ['RGB', 'BGR', 'GRAY'] as const);
    const pixelRange = oneOf(ctx, 'pixel-range', ['0-1', '0-255'] as const);
    const tfliteIo = oneOf(ctx, 'tflite-io', ['int8', 'uint8'] as const);
    const name =
      optionalString(ctx, 'name') ?? basename(input, extname(input)).replace(/[^A-Za-z0-9._-]/g, '-');
    const version = optionalString(ctx, 'version') ?? '1.0.0';
    const labelsFile = optionalString(ctx, 'labels');
    const calibrationPath = optionalString(ctx, 'calibration');
    const referencePath = optionalString(ctx, 'reference');
    const description = optionalString(ctx, 'description');
    const limit = optionalInt(ctx, 'limit');
    const width = optionalInt(ctx, 'width');
    const height = optionalInt(ctx, 'height');
    const mean = numberList(ctx, 'mean');
    const std = numberList(ctx, 'std');
    const key = await loadSigningKey(optionalString(ctx, 'key') ?? defaultKeyPath());
    const { convertOnnxFile, knownTargets } = await import('@edgefleet/converters');
    // Targets other than cpu/webgpu (edgetpu) register themselves with the converters.
    const targets = target === 'all' ? knownTargets() : target.split(',').map((t) => t.trim());
    const unknown = targets.filter((t) => !knownTargets().includes(t));
    if (unknown.length)
      throw new UsageError(
        `--target must be one of ${[...knownTargets(), 'all'].join(', ')}, got "${unknown.join(',')}"`,
      );
    const { readFile } = await import('node:fs/promises');
    const labels = labelsFile
      ? (await readFile(labelsFile, 'utf8'))
          .split(/\r?\n/)
          .map((l) => l.trim())
          .filter(Boolean)
      : undefined;

    ctx.progress(`converting ${basename(input)} for ${target}…`);
    const { bundle, result, reference } = await convertOnnxFile({
      input,
      name,
      version,
      key,
      targets,
      ...(quantize ? { quantize } : {}),
      ...(method ? { method } : {}),
      ...(calibrationPath ? { calibrationPath } : {}),
      ...(referencePath ? { referencePath } : {}),
      ...(labels ? { labels } : {}),
      ...(description ? { description } : {}),
      ...(limit ? { limit } : {}),
      perChannel: ctx.values['per-tensor'] !== true,
      ...(reduceRange ? { reduceRange: reduceRange === 'on' } : {}),
      verifyWasm: ctx.values['no-wasm'] !== true,
      ...(tfliteIo ? { tfliteIo } : {}),
      force: ctx.values.force === true,
      preprocessing: {
        ...(width ? { width } : {}),
        ...(height ? { height } : {}),
        ...(layout ? { layout } : {}),
        ...(channels ? { channels } : {}),
        ...(mean ? { mean } : {}),
        ...(std ? { std } : {}),
        ...(pixelRange ? { pixelRange } : {}),
      },
      // About ten updates per stage: readable in a log, still alive on a terminal.
      onProgress: (stage, done, total) => {
        if (!total || done === total || done % Math.max(1, Math.floor(total / 10)) === 0)
          ctx.progress(total ? `${stage} ${done}/${total}` : stage);
      },
    });
    await writeFile(out, bundle.bytes);
    ctx.progress('');
    const { report } = result;
    const rejected = report.artifacts.filter((a) => a.status === 'rejected');
    ctx.printJson({
      output: out,
      bytes: bundle.bytes.byteLength,
      name,
      version,
      report,
      ...(reference ? { reference } : {}),
    });
    ctx.print(
      `${out}: ${name}@${version}, ${formatBytes(bundle.bytes.byteLength)}, signed by key ${key.keyId}`,
    );
    ctx.print(
      `verified on ${report.verification.samples} held-out sample(s) (${report.verification.description})` +
        (report.calibration
          ? `; calibrated (${report.calibration.method}) on ${report.calibration.description}`
          : ''),
    );
    if (reference)
      ctx.print(
        reference.status === 'built'
          ? `drift reference profile built from ${reference.description}; it ships in the bundle`
          : `WARNING: drift reference profile ${reference.status}: ${reference.reason}`,
      );
    ctx.print('');
    ctx.print(
      formatTable(report.artifacts, [
        { header: 'ARTIFACT', value: (a) => a.file },
        { header: 'TARGET', value: (a) => a.target },
        { header: 'PRECISION', value: (a) => a.precision },
        { header: 'STATUS', value: (a) => a.status },
        { header: 'SIZE', value: (a) => formatBytes(a.sizeBytes), align: 'right' },
        { header: 'RATIO', value: (a) => a.sizeRatio.toFixed(2), align: 'right' },
        { header: 'REL-RMSE', value: (a) => pct(worst(a)?.relRmse), align: 'right' },
        { header: 'COSINE', value: (a) => worst(a)?.cosine.toFixed(5), align: 'right' },
        { header: 'TOP-1', value: (a) => pct(worst(a)?.top1), align: 'right' },
        {
          header: 'INT8 KERNELS',
          value: (a) =>
            a.kernels
              ? `${a.kernels.integerKernels}/${a.kernels.integerKernels + a.kernels.floatComputeKernels}`
              : '-',
          align: 'right',
        },
      ]),
    );
    for (const a of report.artifacts)
      if (a.reason) ctx.print(`  ${a.file}: ${a.status === 'rejected' ? 'REJECTED' : 'forced'}: ${a.reason}`);
    for (const a of report.artifacts)
      if (a.edgetpu) ctx.print(`  ${a.file}: Edge TPU: ${a.edgetpu.summary}; ${a.edgetpu.compilation}`);
    for (const w of report.warnings) ctx.print(`WARNING: ${w}`);
    for (const a of report.artifacts) for (const w of a.warnings) ctx.print(`WARNING: ${a.file}: ${w}`);
    if (rejected.length) {
      ctx.print(
        `${rejected.length} artifact(s) missed their tolerance and were left out; --force packs them anyway`,
      );
      return 1;
    }
    return 0;
  },
};
