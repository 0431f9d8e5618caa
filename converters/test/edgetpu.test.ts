/**
 * The Edge TPU target: the CNN converts to a verified full-int8 TFLite twin in a signed bundle,
 * with the lint result and, without edgetpu_compiler, a plain "compilation is pending". With a
 * compiler on PATH (here a script standing in for it) the compiled file is packed with the twin
 * as its fallback, or refused when it does not belong to the twin. The linter and the inspector
 * are checked on the real compiled models in ../shared/models/tflite.
 */
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PlainTensor } from '@edgefleet/bundle';
import { generateSigningKey, unpackBundle } from '@edgefleet/bundle';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../test/support/processes.ts';
import { requireService, sharedDir } from '../../test/support/services.ts';
import {
  type ConversionResult,
  convertModel,
  describeLint,
  inspectEdgeTpu,
  lintEdgeTpu,
  packageTflite,
  packConversion,
  parseCompilerLog,
  type SampleSet,
} from '../src/index.ts';
import { BuiltinOperator, OperatorCodeT, OperatorT } from '../src/tflite/generated/schema_generated.ts';
import { convertOnnxToTflite } from '../src/tflite/lower/index.ts';
import { readTflite, writeTflite } from '../src/tflite/read.ts';
import { buildCnnClassifier, cnnSamples } from './support/cnn.ts';

const shared = await requireService('shared');
const models = join(sharedDir(), 'models/tflite');
const dir = await mkdtemp(join(tmpdir(), 'ef-edgetpu-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const calibration = cnnSamples(100, 2000, 1.0);
const heldOut = cnnSamples(100, 3000, 1.0);
const set = (s: { samples: Record<string, PlainTensor>[] }, description: string): SampleSet => ({
  samples: s.samples,
  origin: 'given',
  description,
});
let model: Uint8Array;
const convert = () =>
  convertModel(model, {
    targets: ['edgetpu'],
    calibration: set(calibration, '100 CNN samples'),
    verification: set(heldOut, '100 held-out CNN samples'),
  });

/** Run with a stand-in edgetpu_compiler (a shell script) named by the override variable. */
async function withCompiler<T>(script: string, run: () => Promise<T>): Promise<T> {
  const path = join(dir, `edgetpu_compiler-${Math.random().toString(36).slice(2)}`);
  await writeFile(path, `#!/bin/sh\n${script}\n`);
  await chmod(path, 0o755);
  process.env.EDGEFLEET_EDGETPU_COMPILER = path;
  try {
    return await run();
  } finally {
    delete process.env.EDGEFLEET_EDGETPU_COMPILER;
  }
}

const LOG = `Edge TPU Compiler version 16.0.384591198
Started a compilation timeout timer of 180 seconds.

Model compiled successfully in 312 ms.

Input model: model.tflite
Input size: 1.11MiB
Output model: model_edgetpu_x.tflite
Output size: 1.18MiB
On-chip memory used for caching model parameters: 1.09MiB
On-chip memory remaining for caching model parameters: 6.63MiB
Off-chip memory used for streaming uncached model parameters: 0.00B
Number of Edge TPU subgraphs: 1
Total number of operations: 9
Operation log: model_edgetpu.log

Operator                       Count      Status

MAX_POOL_2D                    3          Mapped to Edge TPU
CONV_2D                        3          Mapped to Edge TPU
RESHAPE                        1          Mapped to Edge TPU
FULLY_CONNECTED                2          Mapped to Edge TPU
`;

/** A script that "compiles" by copying a prepared file and writing the log, as the compiler does. */
const copying = (file: string) =>
  `out=""; while [ $# -gt 0 ]; do case "$1" in --out_dir) out="$2"; shift 2;; *) shift;; esac; done
cat <<'EOF'
${LOG}
EOF
cp '${file}' "$out/model_edgetpu.tflite"
printf '%s' '${LOG.split('\n').slice(-7).join('\n')}' > "$out/model_edgetpu.log"`;

beforeAll(async () => {
  model = await buildCnnClassifier();
}, 120_000);

describe('edgefleet convert --target edgetpu (no edgetpu_compiler here)', () => {
  let result: ConversionResult;
  beforeAll(async () => {
    delete process.env.EDGEFLEET_EDGETPU_COMPILER;
    result = await convert();
  }, 180_000);

  it('packs a verified full-int8 TFLite twin with agreement figures and the lint result', async () => {
    const report = result.report.artifacts.find((a) => a.file === 'edgetpu/model_int8.tflite');
    expect(report?.status, report?.reason).toBe('packaged');
    expect(report?.target).toBe('tflite');
    expect(report?.gatedOn).toEqual(['tflite']);
    const tflite = report?.runtimes[0];
    expect(tflite?.runtime).toBe('tflite');
    expect(tflite?.worst?.top1Agreement).toBeGreaterThanOrEqual(0.95);
    expect(tflite?.worst?.relRmse).toBeLessThan(0.06);
    expect(report?.sizeRatio).toBeLessThanOrEqual(0.3);
    expect(report?.weightCoverage).toBeGreaterThan(0.99);
    expect(report?.edgetpu?.summary).toBe('9 of 9 ops on the Edge TPU');
    expect(report?.edgetpu?.firstCpuOp).toBeUndefined();
    expect(report?.edgetpu?.compilation).toBe('pending');
    expect(result.report.warnings.join('\n')).toMatch(/compilation is pending: packaged the CPU twin/);
    console.info(
      `CNN → TFLite int8: ${report?.sizeBytes} B (${report?.sizeRatio.toFixed(3)}×), top-1 agreement ` +
        `${((tflite?.worst?.top1Agreement ?? 0) * 100).toFixed(1)} %, rel-RMSE ${tflite?.worst?.relRmse.toPrecision(3)}, ` +
        report?.edgetpu?.summary,
    );
  });

  it('signs the twin into the bundle with NHWC int8 I/O and a smoke test computed by TFLite', async () => {
    const key = await generateSigningKey();
    const packed = await packConversion(result, { name: 'cnn', version: '1.0.0', key });
    const bundle = await unpackBundle(packed.bytes, {
      trustedKeys: [{ keyId: key.keyId, publicKey: key.publicKey }],
    });
    const [twin] = bundle.manifest.artifacts;
    expect(bundle.manifest.artifacts).toHaveLength(1);
    expect(twin).toMatchObject({
      file: 'edgetpu/model_int8.tflite',
      target: 'tflite',
      runtime: 'tflite',
      precision: 'int8',
      inputs: [{ name: 'image', dtype: 'int8', shape: [1, 32, 32, 3] }],
      outputs: [{ name: 'logits', dtype: 'int8', shape: [1, 10] }],
    });
    expect(twin?.fallback).toBeUndefined();
    expect((twin?.report as { edgetpu?: { summary: string } } | undefined)?.edgetpu?.summary).toBe(
      '9 of 9 ops on the Edge TPU',
    );
    const bytes = bundle.files.get('edgetpu/model_int8.tflite') as Uint8Array;
    expect(lintEdgeTpu(bytes).mapped).toBe(9);
    const smoke = JSON.parse(new TextDecoder().decode(bundle.files.get('smoke-test.json')));
    expect(smoke.expected['edgetpu/model_int8.tflite'].outputs.logits.shape).toEqual([1, 10]);
  });
});

describe('with edgetpu_compiler on PATH', () => {
  let compiledBytes: string;
  beforeAll(async () => {
    // Conversion is deterministic: the twin the pipeline makes is this one. Stand in for the
    // compiler's output with the twin's I/O around the op and package of a real compiled model.
    const twin = readTflite((await convertOnnxToTflite(model, calibration.samples)).bytes);
    const real = readTflite(await readFile(join(models, 'keras_lstm_mnist_ptq_edgetpu.tflite')));
    const graph = twin.subgraphs[0];
    if (!graph) throw new Error('no graph');
    twin.operatorCodes = [
      new OperatorCodeT(BuiltinOperator.CUSTOM, 'edgetpu-custom-op', 1, BuiltinOperator.CUSTOM),
    ];
    const op = new OperatorT(0, [...graph.inputs], [...graph.outputs]);
    op.customOptions = [...(real.subgraphs[0]?.operators[0]?.customOptions ?? [])];
    graph.operators = [op];
    compiledBytes = join(dir, 'compiled.tflite');
    await writeFile(compiledBytes, writeTflite(twin));
  }, 120_000);

  it('packs the compiled model first, with the twin as its fallback and the log in the report', async () => {
    const result = await withCompiler(copying(compiledBytes), convert);
    const [compiled, twin] = result.artifacts;
    expect(compiled?.entry).toMatchObject({
      file: 'edgetpu/model_int8_edgetpu.tflite',
      target: 'edgetpu',
      runtime: 'tflite',
      requires: ['edgetpu'],
      fallback: 'edgetpu/model_int8.tflite',
      minRuntimeVersion: '12',
    });
    expect(twin?.entry.file).toBe('edgetpu/model_int8.tflite');
    const report = compiled?.report.edgetpu;
    expect(report?.compilation).toBe('compiled');
    expect(report?.compiler).toMatchObject({ version: '16.0.384591198', opsOnEdgeTpu: 9, opsOnCpu: 0 });
    expect(report?.compilationMessage).toContain('the compiler maps 9 of 9 ops');
    const key = await generateSigningKey();
    const packed = await packConversion(result, { name: 'cnn', version: '1.0.0', key });
    const bundle = await unpackBundle(packed.bytes, { trustedKeys: [key] });
    expect(bundle.manifest.artifacts.map((a) => a.file)).toEqual([
      'edgetpu/model_int8_edgetpu.tflite',
      'edgetpu/model_int8.tflite',
    ]);
  }, 180_000);

  it('refuses a compiled file that does not belong to the twin, and keeps the twin', async () => {
    const result = await withCompiler(copying(join(models, 'split_concat_edgetpu.tflite')), convert);
    expect(result.artifacts.map((a) => a.entry.file)).toEqual(['edgetpu/model_int8.tflite']);
    const refused = result.report.artifacts.find((a) => a.file === 'edgetpu/model_int8_edgetpu.tflite');
    expect(refused?.status).toBe('rejected');
    expect(refused?.reason).toMatch(/inputs .* differ from the CPU twin's/);
    expect(result.report.warnings.join('\n')).toMatch(/output was refused/);
  }, 180_000);

  it('reports a failing compiler in its own words and still packs the twin', async () => {
    const result = await withCompiler(
      "echo \"ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'\" >&2; exit 1",
      convert,
    );
    expect(result.artifacts.map((a) => a.entry.file)).toEqual(['edgetpu/model_int8.tflite']);
    const twin = result.report.artifacts.find((a) => a.file === 'edgetpu/model_int8.tflite');
    expect(twin?.edgetpu?.compilation).toBe('failed');
    expect(twin?.edgetpu?.compilationMessage).toContain("Didn't find op for builtin opcode 'CONV_2D'");
  }, 180_000);
});

describe.skipIf(!shared.available)('Edge TPU linter and inspector on real models', () => {
  const read = (f: string) => readFile(join(models, f)).then((b) => new Uint8Array(b));

  it('inspects compiled models: custom op, min runtime version, chip, parameter bytes', async () => {
    const lstm = inspectEdgeTpu(await read('keras_lstm_mnist_ptq_edgetpu.tflite'));
    expect(lstm).toMatchObject({ compiled: true, cpuOps: [], minRuntimeVersion: 12, chips: ['beagle'] });
    expect(lstm.edgeTpuOps).toHaveLength(1);
    expect(lstm.edgeTpuOps[0]?.chipVersions).toEqual([18]);
    const caching = lstm.edgeTpuOps[0]?.package.executables.find((e) => e.type === 'PARAMETER_CACHING');
    expect(caching?.parameterBytes).toBe(43_968);
    expect(lstm.parameterBytes).toBeGreaterThanOrEqual(43_968);
    expect(lstm.streamsParameters).toBe(false);
    // Written by an older compiler: only deprecated_builtin_code says CUSTOM.
    const split = inspectEdgeTpu(await read('split_concat_edgetpu.tflite'));
    expect(split).toMatchObject({ compiled: true, minRuntimeVersion: 13 });
    expect(inspectEdgeTpu(await read('split_concat.tflite')).compiled).toBe(false);
  });

  it('lints: mapped counts, the first CPU op and why', async () => {
    expect(lintEdgeTpu(await read('split_concat.tflite')).summary).toBe('3 of 3 ops on the Edge TPU');
    const compiled = lintEdgeTpu(await read('keras_lstm_mnist_ptq_edgetpu.tflite'));
    expect(compiled).toMatchObject({ compiled: true, summary: '1 of 1 ops on the Edge TPU' });
    const float = lintEdgeTpu(await read('hello_world_float.tflite'));
    expect(float.summary).toBe('0 of 3 ops on the Edge TPU');
    expect(float.firstCpuOp?.op).toBe('FULLY_CONNECTED');
    expect(float.firstCpuOp?.issues.join(';')).toMatch(/FLOAT32, not 8-bit quantized/);
    const int8 = lintEdgeTpu(await read('hello_world_int8.tflite'));
    expect(int8.firstCpuOp?.issues.join(';')).toMatch(/dynamic shape/);
    expect(describeLint(int8)).toMatch(
      /op 0 \(FULLY_CONNECTED\) falls back to the CPU: .*and the 2 op\(s\) after/,
    );
    // An op newer than the runtime linted for stops the mapping there.
    const old = lintEdgeTpu(await read('keras_lstm_mnist_ptq.tflite'), { runtime: 12 });
    expect(old.firstCpuOp).toMatchObject({ index: 0, op: 'QUANTIZE' });
    expect(old.firstCpuOp?.issues[0]).toMatch(/needs Edge TPU runtime 13/);
  });

  it('refuses files that are not TFLite models', () => {
    expect(() => lintEdgeTpu(new TextEncoder().encode('not a tflite model at all'))).toThrow(/TFL3/);
    expect(() => inspectEdgeTpu(new Uint8Array(8))).toThrow(/only 8 bytes/);
  });
});

/** A float32 .npy of samples stacked on axis 0 (what `--calibration` reads). */
function npy(samples: Record<string, PlainTensor>[], input: string): Uint8Array {
  const first = samples[0]?.[input] as PlainTensor;
  const shape = [samples.length, ...first.shape.slice(1)];
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}), }`;
  header += `${' '.repeat(63 - ((10 + header.length) % 64))}\n`;
  const head = new Uint8Array(10 + header.length);
  head.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0, header.length & 255, header.length >> 8]);
  head.set(new TextEncoder().encode(header), 10);
  const body = new Float32Array(
    samples.flatMap((s) => [...((s[input] as PlainTensor).data as Float32Array)]),
  );
  return new Uint8Array([...head, ...new Uint8Array(body.buffer)]);
}

describe('the CLI', () => {
  const env = { HOME: dir, EDGEFLEET_SIGNING_KEY: '', EDGEFLEET_EDGETPU_COMPILER: join(dir, 'absent') };

  it('convert --target edgetpu packs the twin and says compilation is pending', async () => {
    await writeFile(join(dir, 'cnn.onnx'), model);
    const key = join(dir, 'key.json');
    expect((await runCli(['keys', 'create', '--out', key], env)).code).toBe(0);
    const out = join(dir, 'cnn.efb');
    const data = join(dir, 'calibration.npy');
    await writeFile(data, npy(cnnSamples(120, 4000, 1.0).samples, 'image'));
    const args = [
      'convert',
      join(dir, 'cnn.onnx'),
      '--target',
      'edgetpu',
      '--calibration',
      data,
      '--key',
      key,
    ];
    args.push('-o', out);
    const run = await runCli(args, env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/edgetpu\/model_int8\.tflite\s+tflite\s+int8\s+packaged/);
    expect(run.stdout).toContain('Edge TPU: 9 of 9 ops on the Edge TPU; pending');
    expect(run.stdout).toMatch(
      /WARNING: edgetpu: edgetpu_compiler is not on PATH, so Edge TPU compilation is pending/,
    );
    const json = await runCli([...args, '--tflite-io', 'uint8', '--json'], env);
    expect(json.code, json.stderr).toBe(0);
    const artifacts = JSON.parse(json.stdout).report.artifacts;
    expect(artifacts[0]).toMatchObject({
      file: 'edgetpu/model_uint8.tflite',
      precision: 'uint8',
      status: 'packaged',
    });
    expect(artifacts[0].runtimes[0].worst.top1Agreement).toBeGreaterThan(0.9);
  }, 180_000);

  it.skipIf(!shared.available)(
    'lint-edgetpu prints a table or --json, exit 1 when an op falls back',
    async () => {
      const ok = await runCli(['lint-edgetpu', join(models, 'keras_lstm_mnist_ptq_edgetpu.tflite')]);
      expect(ok.code, ok.stderr).toBe(0);
      expect(ok.stdout).toContain('1 of 1 ops on the Edge TPU');
      expect(ok.stdout).toMatch(/min runtime 12; chip beagle;.*parameters/);
      const bad = await runCli(['lint-edgetpu', join(models, 'hello_world_int8.tflite'), '--json']);
      expect(bad.code).toBe(1);
      const parsed = JSON.parse(bad.stdout);
      expect(parsed.lint.summary).toBe('0 of 3 ops on the Edge TPU');
      expect(parsed.lint.firstCpuOp.op).toBe('FULLY_CONNECTED');
      const usage = await runCli(['lint-edgetpu', join(models, 'split_concat.tflite'), '--runtime', '99']);
      expect(usage.code).toBe(2);
      expect(usage.stderr).toContain('--runtime must be an Edge TPU runtime version');
    },
    60_000,
  );
});

describe.skipIf(!shared.available)('publishing an existing .tflite (with its _edgetpu twin)', () => {
  const read = (f: string) => readFile(join(models, f)).then((b) => new Uint8Array(b));

  it('packs the compiled model with the CPU model as its fallback and a TFLite smoke test', async () => {
    const key = await generateSigningKey();
    const packed = await packageTflite({
      cpu: await read('keras_lstm_mnist_ptq.tflite'),
      edgetpu: await read('keras_lstm_mnist_ptq_edgetpu.tflite'),
      name: 'lstm',
      version: '1.0.0',
      key,
    });
    const bundle = await unpackBundle(packed.bytes, { trustedKeys: [key] });
    expect(bundle.manifest.source.format).toBe('tflite');
    expect(bundle.manifest.artifacts).toMatchObject([
      {
        file: 'edgetpu/model_edgetpu.tflite',
        target: 'edgetpu',
        runtime: 'tflite',
        precision: 'uint8',
        requires: ['edgetpu'],
        fallback: 'tflite/model.tflite',
        minRuntimeVersion: '12',
      },
      { file: 'tflite/model.tflite', target: 'tflite', runtime: 'tflite', precision: 'uint8' },
    ]);
    expect(bundle.manifest.inputs[0]).toMatchObject({ dtype: 'uint8', shape: [1, 28, 28] });
    const smoke = JSON.parse(new TextDecoder().decode(bundle.files.get('smoke-test.json')));
    expect(Object.keys(smoke.expected)).toEqual(['tflite/model.tflite', 'edgetpu/model_edgetpu.tflite']);
    const alone = await packageTflite({
      cpu: await read('split_concat.tflite'),
      name: 's',
      version: '1.0.0',
      key,
    });
    const single = await unpackBundle(alone.bytes, { trustedKeys: [key] });
    expect(single.manifest.artifacts.map((a) => a.file)).toEqual(['tflite/model.tflite']);
    expect(single.manifest.inputs).toHaveLength(3);
    expect(single.manifest.outputs).toHaveLength(5);
  });

  it('refuses a twin from another model, a compiled file alone, and a model TFLite cannot run', async () => {
    const key = await generateSigningKey();
    const base = { name: 'm', version: '1.0.0', key };
    await expect(
      packageTflite({
        ...base,
        cpu: await read('keras_lstm_mnist_ptq.tflite'),
        edgetpu: await read('split_concat_edgetpu.tflite'),
      }),
    ).rejects.toMatchObject({
      code: 'EDGETPU_INVALID',
      message: expect.stringMatching(/not compiled from this model/),
    });
    await expect(
      packageTflite({
        ...base,
        cpu: await read('split_concat.tflite'),
        edgetpu: await read('split_concat.tflite'),
      }),
    ).rejects.toMatchObject({ code: 'EDGETPU_INVALID', message: expect.stringMatching(/not compiled/) });
    await expect(
      packageTflite({ ...base, cpu: await read('split_concat_edgetpu.tflite') }),
    ).rejects.toMatchObject({
      code: 'TFLITE_UNSUPPORTED',
      message: expect.stringMatching(/compiled for the Edge TPU/),
    });
    await expect(
      packageTflite({ ...base, cpu: await read('model_invoking_error.tflite') }),
    ).rejects.toMatchObject({
      code: 'TFLITE_RUNTIME_FAILED',
    });
  });
});

describe('compiler log', () => {
  it('reads the version, op counts, memory use and the operator table', () => {
    const partial = `${LOG.replace('Total number of operations: 9', 'Total number of operations: 10')}
Number of operations that will run on Edge TPU: 9
Number of operations that will run on CPU: 1
SOFTMAX                        1          More than one subgraph is not supported
`;
    const log = parseCompilerLog(partial);
    expect(log).toMatchObject({
      compilerVersion: '16.0.384591198',
      opsOnEdgeTpu: 9,
      opsOnCpu: 1,
      totalOps: 10,
      subgraphs: 1,
      onChipMemoryUsed: '1.09MiB',
      offChipMemoryUsed: '0.00B',
    });
    expect(log.operators).toContainEqual({
      op: 'SOFTMAX',
      count: 1,
      status: 'More than one subgraph is not supported',
    });
    expect(parseCompilerLog(LOG)).toMatchObject({ opsOnEdgeTpu: 9, opsOnCpu: 0, totalOps: 9 });
  });
});
