import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSigningKey, publicKeyOf, smokeTestFile, unpackBundle } from '@edgefleet/bundle';
import { describe, expect, it } from 'vitest';
import { requireService, sharedDir } from '../../test/support/services.ts';
import {
  ConverterError,
  inspectOnnx,
  mlpModel,
  packageOnnx,
  parseOnnx,
  runOnnx,
  sampleInputs,
  serializeOnnx,
} from '../src/index.ts';

const shared = await requireService('shared');

describe('ONNX inspection', () => {
  it('describes a model: inputs, outputs, ops and parameters', () => {
    const summary = inspectOnnx(
      mlpModel({ inputs: 4, hidden: [8], outputs: 3, softmax: true, batch: 'batch' }),
    );
    expect(summary.inputs).toEqual([{ name: 'input', shape: ['batch', 4], dtype: 'float32' }]);
    expect(summary.outputs).toEqual([{ name: 'output', shape: ['batch', 3], dtype: 'float32' }]);
    expect(summary.opTypes.map((o) => o.opType).sort()).toEqual(['Gemm', 'Relu', 'Softmax']);
    expect(summary.parameterCount).toBe(4 * 8 + 8 + 8 * 3 + 3);
  });

  it('gives a typed error for empty, garbage and truncated bytes', () => {
    const model = mlpModel({ inputs: 4, hidden: [8], outputs: 3 });
    for (const bytes of [
      new Uint8Array(0),
      new TextEncoder().encode('definitely not a model'),
      model.slice(0, model.byteLength - 7),
    ]) {
      expect(() => inspectOnnx(bytes)).toThrow(ConverterError);
    }
  });

  it('runs in onnxruntime-node; softmax outputs sum to one', async () => {
    const model = mlpModel({ inputs: 4, hidden: [8], outputs: 3, softmax: true });
    const out = await runOnnx(model, sampleInputs(inspectOnnx(model).inputs));
    const probs = Array.from(out.output?.data as Float32Array);
    expect(probs.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  });
});

describe.skipIf(!shared.available)('ONNX round trip on the backend conformance suite', () => {
  it('re-serialises every model byte for byte', async () => {
    const root = join(sharedDir(), 'conformance/onnx-backend');
    let count = 0;
    for (const group of await readdir(root)) {
      for (const test of await readdir(join(root, group)).catch(() => [] as string[])) {
        const bytes = await readFile(join(root, group, test, 'model.onnx')).catch(() => undefined);
        if (!bytes) continue;
        const again = serializeOnnx(parseOnnx(bytes));
        expect(Buffer.from(again).equals(bytes), `${group}/${test}`).toBe(true);
        count++;
      }
    }
    console.info(`ONNX round trip: ${count} backend-suite models re-serialised byte for byte`);
    expect(count).toBeGreaterThan(1800);
  });
});

describe('fp32 packaging', () => {
  it('packs a signed bundle whose smoke test reproduces in onnxruntime', async () => {
    const key = await generateSigningKey();
    const source = mlpModel({ inputs: 6, hidden: [16], outputs: 4, softmax: true });
    const packed = await packageOnnx({ source, name: 'mlp', version: '1.0.0', key });
    const bundle = await unpackBundle(packed.bytes, { trustedKeys: [publicKeyOf(key)] });
    expect(bundle.manifest.artifacts[0]).toMatchObject({
      target: 'cpu',
      precision: 'fp32',
      file: 'cpu/model.onnx',
    });
    const smoke = smokeTestFile.parse(
      JSON.parse(new TextDecoder().decode(bundle.files.get('smoke-test.json'))),
    );
    expect(Object.keys(smoke.expected)).toEqual(['cpu/model.onnx']);
  });
});
