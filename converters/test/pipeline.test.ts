/**
 * The conversion pipeline end to end: per-target op support checked first, the tolerance gate
 * (rejected unless forced, and the report says why), fp16 overflow guarding, deterministic output,
 * and the signed bundle whose smoke test every artifact passes.
 */
import { create } from '@bufbuild/protobuf';
import {
  compareTensors,
  decodeTensor,
  generateSigningKey,
  publicKeyOf,
  smokeTestFile,
  unpackBundle,
} from '@edgefleet/bundle';
import { OperatorSetIdProtoSchema } from 'onnx-buf';
import { describe, expect, it } from 'vitest';
import {
  buildModel,
  convertModel,
  convertToFp16,
  mlpModel,
  packConversion,
  parseOnnx,
  probeTypes,
  runOnnx,
  serializeOnnx,
  syntheticSamples,
} from '../src/index.ts';

const mlp = mlpModel({ inputs: 32, hidden: [64, 64], outputs: 10, batch: 'N' });

describe('per-target op support, checked before any work', () => {
  const mlModel = (() => {
    const m = parseOnnx(
      buildModel({
        inputs: [{ name: 'x', shape: [1, 4] }],
        outputs: [{ name: 'y', shape: [1, 4] }],
        nodes: [
          {
            op: 'Scaler',
            domain: 'ai.onnx.ml',
            inputs: ['x'],
            outputs: ['y'],
            attrs: { offset: Float32Array.of(1, 2, 3, 4), scale: Float32Array.of(2, 2, 2, 2) },
          },
        ],
      }),
    );
    m.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: 'ai.onnx.ml', version: 1n }));
    return serializeOnnx(m);
  })();

  it('an ai.onnx.ml model cannot target WebGPU: the error names the op', async () => {
    await expect(convertModel(mlModel, { targets: ['webgpu'] })).rejects.toMatchObject({
      code: 'TARGET_UNSUPPORTED',
      message: expect.stringContaining('ai.onnx.ml:Scaler (×1)'),
    });
  });

  it('with both targets, CPU is converted and WebGPU skipped with the reason', async () => {
    const result = await convertModel(mlModel, { targets: ['cpu', 'webgpu'], quantize: 'none' });
    expect(result.artifacts.map((a) => a.entry.file)).toEqual(['cpu/model.onnx']);
    expect(result.report.warnings.join('\n')).toMatch(/skipped target webgpu: .*Scaler/);
  });
});

describe('the tolerance gate', () => {
  const strict = { int8: { maxRelRmse: 1e-6 } };

  it('leaves out an artifact that misses its tolerance and says why; the fp32 fallback stays', async () => {
    const result = await convertModel(mlp, { targets: ['cpu'], quantize: 'static', tolerances: strict });
    const int8 = result.report.artifacts.find((a) => a.precision === 'int8');
    expect(int8?.status).toBe('rejected');
    expect(int8?.reason).toMatch(/relative RMSE .* > 0.000001 in onnxruntime-node/);
    expect(result.artifacts.map((a) => a.entry.file)).toEqual(['cpu/model.onnx']);
  });

  it('--force packs it anyway, marked forced, with a warning', async () => {
    const result = await convertModel(mlp, {
      targets: ['cpu'],
      quantize: 'static',
      tolerances: strict,
      force: true,
    });
    expect(result.report.artifacts.find((a) => a.precision === 'int8')?.status).toBe('forced');
    expect(result.artifacts.map((a) => a.entry.file)).toEqual(['cpu/model-int8.onnx', 'cpu/model.onnx']);
    expect(result.report.warnings.join('\n')).toMatch(/packaged despite missing its tolerance/);
  });

  it('without calibration data it warns loudly and records the synthetic origin', async () => {
    const result = await convertModel(mlp, { targets: ['cpu'], quantize: 'static' });
    expect(result.report.warnings[0]).toMatch(/^NO CALIBRATION DATA/);
    expect(result.report.calibration).toMatchObject({ origin: 'synthetic', synthetic: true, samples: 100 });
  });

  it('gives the same bytes for the same model and data', async () => {
    const calibration = syntheticSamples([{ name: 'input', shape: [1, 32], dtype: 'float32' }], 50, {
      seed: 3,
    });
    const once = await convertModel(mlp, { targets: ['cpu'], quantize: 'static', calibration });
    const twice = await convertModel(mlp, { targets: ['cpu'], quantize: 'static', calibration });
    expect(
      Buffer.from(once.artifacts[0]?.bytes ?? []).equals(Buffer.from(twice.artifacts[0]?.bytes ?? [])),
    ).toBe(true);
  });
});

describe('fp16 overflow guard', () => {
  // y = ((x·3000)²)/1e7: the square reaches ~1e7, far past fp16's 65504, though input and output are small.
  const squares = buildModel({
    inputs: [{ name: 'x', shape: [1, 16] }],
    outputs: [{ name: 'y', shape: [1, 16] }],
    nodes: [
      { op: 'Mul', inputs: ['x', 'k'], outputs: ['big'] },
      { op: 'Mul', inputs: ['big', 'big'], outputs: ['square'] },
      { op: 'Div', inputs: ['square', 'd'], outputs: ['y'] },
    ],
    initializers: [
      { name: 'k', dims: [], data: Float32Array.of(3000) },
      { name: 'd', dims: [], data: Float32Array.of(1e7) },
    ],
  });

  it('keeps nodes whose observed activations near the fp16 limit in fp32, so no Inf appears', async () => {
    const result = await convertModel(squares, { targets: ['webgpu'], quantize: 'fp16' });
    const fp16 = result.report.artifacts.find((a) => a.precision === 'fp16');
    expect(fp16?.status, fp16?.reason).toBe('packaged');
    expect(fp16?.notes.join('\n')).toMatch(/kept fp32: Mul .*square.* reaches/);
    for (const r of fp16?.runtimes ?? []) expect(r.worst?.nonFinite).toBe(0);
  });

  it('the guard is data-driven: without observed ranges the same Mul would be converted to fp16', async () => {
    // (onnxruntime's CPU and WASM backends compute fp16 Mul through float casts, so an overflow would
    // only show on a GPU; what matters is which nodes the pass leaves in fp32.)
    const model = parseOnnx(squares);
    const unguarded = convertToFp16(model, await probeTypes(model), { blockedOps: new Set() });
    expect(unguarded.keptFp32).toEqual([]);
    const again = parseOnnx(squares);
    const guarded = convertToFp16(again, await probeTypes(again), {
      blockedOps: new Set(),
      ranges: new Map([
        ['big', [-3000, 3000]],
        ['square', [0, 9e6]],
      ]),
    });
    expect(guarded.keptFp32.map((k) => k.node).sort()).toEqual(['Div_2', 'Mul_1']); // touch the 9e6 square
    const out = await runOnnx(serializeOnnx(again), {
      x: { dtype: 'float32', shape: [1, 16], data: new Float32Array(16).fill(0.5) },
    });
    expect(Array.from(out.y?.data as Float32Array)[0]).toBeCloseTo(0.225, 5); // (0.5·3000)² / 1e7
  });
});

describe('fp16 with a decomposed LayerNorm', () => {
  // x·200 → (x − mean)² → mean → +eps → sqrt → divide: the squares reach ~1e6 for inputs near ±3.
  const layerNorm = buildModel({
    inputs: [{ name: 'x', shape: [1, 64] }],
    outputs: [{ name: 'y', shape: [1, 64] }],
    nodes: [
      { op: 'Mul', inputs: ['x', 'gain'], outputs: ['h'] },
      { op: 'ReduceMean', inputs: ['h'], outputs: ['mu'], attrs: { axes: [1] } },
      { op: 'Sub', inputs: ['h', 'mu'], outputs: ['d'] },
      { op: 'Pow', inputs: ['d', 'two'], outputs: ['d2'] },
      { op: 'ReduceMean', inputs: ['d2'], outputs: ['var'], attrs: { axes: [1] } },
      { op: 'Add', inputs: ['var', 'eps'], outputs: ['ve'] },
      { op: 'Sqrt', inputs: ['ve'], outputs: ['sd'] },
      { op: 'Div', inputs: ['d', 'sd'], outputs: ['y'] },
    ],
    initializers: [
      { name: 'gain', dims: [], data: Float32Array.of(200) },
      { name: 'two', dims: [], data: Float32Array.of(2) },
      { name: 'eps', dims: [], data: Float32Array.of(1e-5) },
    ],
  });

  it('keeps the Pow/ReduceMean chain and the huge variance in fp32: no Inf, fp16 accuracy', async () => {
    const result = await convertModel(layerNorm, { targets: ['webgpu'], quantize: 'fp16' });
    const fp16 = result.report.artifacts.find((a) => a.precision === 'fp16');
    expect(fp16?.status, fp16?.reason).toBe('packaged');
    const kept = fp16?.notes.filter((n) => n.startsWith('kept fp32')).join('\n');
    expect(kept).toMatch(/Pow/);
    expect(kept).toMatch(/ReduceMean/);
    expect(kept).toMatch(/Add .*reaches/); // var ≈ 4e4 · … observed beyond 16384
    for (const r of fp16?.runtimes ?? []) {
      expect(r.worst?.nonFinite).toBe(0);
      expect(r.worst?.relRmse).toBeLessThan(1e-2);
    }
  });
});

describe('the signed bundle', () => {
  it('holds each target’s artifacts, fallbacks, the report, and a smoke test every artifact passes', async () => {
    const key = await generateSigningKey();
    const result = await convertModel(mlp, { targets: ['cpu', 'webgpu'], quantize: 'static' });
    const packed = await packConversion(result, { name: 'mlp', version: '2.0.0', key, labels: ['a', 'b'] });
    const bundle = await unpackBundle(packed.bytes, { trustedKeys: [publicKeyOf(key)] });
    const m = bundle.manifest;
    expect(m.artifacts.map((a) => [a.file, a.target, a.precision, a.fallback ?? null])).toEqual([
      ['cpu/model-int8.onnx', 'cpu', 'int8', 'cpu/model.onnx'],
      ['cpu/model.onnx', 'cpu', 'fp32', null],
      ['webgpu/model-int8.onnx', 'webgpu', 'int8', 'cpu/model.onnx'],
    ]);
    expect(m.artifacts[0]?.report).toMatchObject({
      status: 'packaged',
      gatedOn: ['onnxruntime-node', 'onnxruntime-web-wasm'],
    });
    expect(m.conversion).toMatchObject({ tool: expect.stringContaining('edgefleet-converters') });
    const smoke = smokeTestFile.parse(
      JSON.parse(new TextDecoder().decode(bundle.files.get('smoke-test.json'))),
    );
    const inputs = Object.fromEntries(Object.entries(smoke.inputs).map(([k, t]) => [k, decodeTensor(t)]));
    for (const a of m.artifacts) {
      const expected = smoke.expected[a.file];
      expect(expected, a.file).toBeDefined();
      const got = await runOnnx(bundle.files.get(a.file) as Uint8Array, inputs);
      for (const [name, t] of Object.entries(expected?.outputs ?? {})) {
        const agreement = compareTensors(
          decodeTensor(t).data as Float32Array,
          got[name]?.data as Float32Array,
          expected?.tolerance as { maxAbs: number },
        );
        expect(agreement.ok, `${a.file} ${name}`).toBe(true);
      }
    }
  });

  it('fp16 for WebGPU requires shader-f16 and falls back to the fp32 file', async () => {
    const key = await generateSigningKey();
    const result = await convertModel(mlp, { targets: ['webgpu'], quantize: 'fp16' });
    const packed = await packConversion(result, { name: 'mlp', version: '1.0.0', key });
    expect(packed.manifest.artifacts.map((a) => [a.file, a.requires, a.fallback ?? null])).toEqual([
      ['webgpu/model-fp16.onnx', ['shader-f16'], 'webgpu/model.onnx'],
      ['webgpu/model.onnx', [], null],
    ]);
  });
});
