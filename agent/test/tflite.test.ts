/**
 * The TFLite backends: real .tflite models run natively (the Coral LSTM reads a handwritten 9; a
 * converted CNN's float face matches what the converters' interpreter put in the bundle's smoke
 * test), and an Edge TPU model on a machine without libedgetpu falls back to its CPU twin with
 * "accelerator missing" recorded, as the registry and the agent's telemetry report it.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ArtifactEntry,
  type BundleManifest,
  decodeTensor,
  generateSigningKey,
  type PlainTensor,
  publicKeyOf,
  type SignatureFile,
  type SigningKeyFile,
  type SmokeTestFile,
  sha256Hex,
  toBase64,
  unpackBundle,
} from '@edgefleet/bundle';
import { buildCnnClassifier, cnnSamples, convertModel, packConversion } from '@edgefleet/converters';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireService, sharedDir } from '../../test/support/services.ts';
import { prepareModel } from '../src/installer.ts';
import { BackendRegistry } from '../src/runtime/backend.ts';
import { onnxBackend } from '../src/runtime/onnx.ts';
import { edgeTpuBackend, findLibEdgeTpu, tfliteBackend } from '../src/runtime/tflite.ts';
import { ModelStore } from '../src/state/model-store.ts';
import { quiet } from './fixtures.ts';

const shared = await requireService('shared');
const models = join(sharedDir(), 'models/tflite');
const dir = await mkdtemp(join(tmpdir(), 'ef-tflite-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A manifest around artifacts, as a published .tflite would have (I/O as the file declares it). */
function manifestOf(artifacts: Partial<ArtifactEntry>[], io: Pick<BundleManifest, 'inputs' | 'outputs'>) {
  return {
    format: 'edgefleet-bundle',
    formatVersion: 1,
    name: 'm',
    version: '1.0.0',
    createdAt: new Date().toISOString(),
    source: { format: 'tflite', sha256: '0'.repeat(64), size_bytes: 0 },
    ...io,
    artifacts: artifacts.map((a) => ({ runtime: 'tflite', precision: 'int8', requires: [], ...a })),
  } as BundleManifest;
}

/** The 28×28 8-bit grayscale BMP, top row first. */
async function mnistNine(): Promise<Uint8Array> {
  const bmp = await readFile(join(models, 'mnist_nine.bmp'));
  const offset = bmp.readUInt32LE(10);
  const [w, h] = [bmp.readInt32LE(18), bmp.readInt32LE(22)];
  const stride = Math.ceil(w / 4) * 4;
  const pixels = new Uint8Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) pixels[y * w + x] = bmp[offset + (h - 1 - y) * stride + x] as number;
  return pixels;
}

const argmax = (t: PlainTensor | undefined) => {
  const v = Array.from(t?.data as ArrayLike<number>, Number);
  return v.indexOf(Math.max(...v));
};

describe.skipIf(!shared.available)('the tflite backend on real models', () => {
  it('is available here and runs the Coral LSTM: the handwritten 9 is a 9', async () => {
    const backend = tfliteBackend();
    expect(await backend.availability()).toEqual({ available: true });
    const lstm = { file: 'tflite/lstm.tflite', target: 'tflite' as const };
    const manifest = manifestOf([lstm], {
      inputs: [{ name: 'serving_default_x:0', shape: [1, 28, 28], dtype: 'uint8' }],
      outputs: [{ name: 'StatefulPartitionedCall:0', shape: [1, 10], dtype: 'uint8' }],
    });
    const artifact = manifest.artifacts[0] as ArtifactEntry;
    expect(backend.canRun(artifact)).toBe(true);
    const session = await backend.load(join(models, 'keras_lstm_mnist_ptq.tflite'), artifact, manifest);
    expect(session.backend).toBe('tflite');
    const input = session.inputs[0];
    expect(input).toMatchObject({ shape: [1, 28, 28] });
    const name = input?.name as string;
    const out = await session.run({
      [name]: { dtype: input?.dtype ?? 'uint8', shape: [1, 28, 28], data: await mnistNine() },
    });
    const [scores] = Object.values(out);
    expect(scores?.shape).toEqual([1, 10]);
    expect(argmax(scores)).toBe(9);
    await session.close();
  });

  it('refuses an _edgetpu.tflite without the delegate, in TFLite’s words', async () => {
    const backend = tfliteBackend();
    const compiled = { file: 'x_edgetpu.tflite', target: 'tflite' as const };
    const manifest = manifestOf([compiled], { inputs: [], outputs: [] });
    await expect(
      backend.load(
        join(models, 'keras_lstm_mnist_ptq_edgetpu.tflite'),
        manifest.artifacts[0] as ArtifactEntry,
        manifest,
      ),
    ).rejects.toThrow(/edgetpu-custom-op/);
  });
});

describe('a converted CNN through the agent’s TFLite backend', () => {
  let manifest: BundleManifest;
  let smoke: SmokeTestFile;
  let twinPath: string;
  let key: SigningKeyFile;
  /** The same conversion with a compiled Edge TPU artifact beside the twin (a real compiled file). */
  let tpu: { manifestBytes: Uint8Array; signature: SignatureFile; files: Map<string, Uint8Array> };
  beforeAll(async () => {
    const model = await buildCnnClassifier();
    const sample = (n: number, seed: number) => ({
      samples: cnnSamples(n, seed, 1.0).samples,
      origin: 'given' as const,
      description: `${n} CNN samples`,
    });
    const result = await convertModel(model, {
      targets: ['edgetpu'],
      calibration: sample(100, 2000),
      verification: sample(40, 3000),
    });
    key = await generateSigningKey();
    const packed = await packConversion(result, { name: 'cnn', version: '1.0.0', key });
    const twinBuilt = result.artifacts[0] as (typeof result.artifacts)[number];
    const compiled = {
      ...twinBuilt,
      bytes: new Uint8Array(await readFile(join(models, 'keras_lstm_mnist_ptq_edgetpu.tflite'))),
      entry: {
        ...twinBuilt.entry,
        file: 'edgetpu/model_int8_edgetpu.tflite',
        target: 'edgetpu' as const,
        requires: ['edgetpu'],
        fallback: twinBuilt.entry.file,
      },
    };
    const withTpu = { ...result, artifacts: [compiled, twinBuilt] };
    const tpuPacked = await packConversion(withTpu, { name: 'cnn', version: '1.0.0', key });
    const tpuBundle = await unpackBundle(tpuPacked.bytes, { trustedKeys: [key] });
    tpu = { manifestBytes: tpuBundle.manifestBytes, signature: tpuPacked.signature, files: tpuBundle.files };
    const bundle = await unpackBundle(packed.bytes, { trustedKeys: [key] });
    manifest = bundle.manifest;
    smoke = JSON.parse(new TextDecoder().decode(bundle.files.get('smoke-test.json')));
    twinPath = join(dir, 'model_int8.tflite');
    await writeFile(twinPath, bundle.files.get('edgetpu/model_int8.tflite') as Uint8Array);
  }, 180_000);

  it('shows the float NCHW face and matches the converters’ interpreter on the smoke test', async () => {
    const twin = manifest.artifacts.find((a) => a.file === 'edgetpu/model_int8.tflite') as ArtifactEntry;
    const session = await tfliteBackend().load(twinPath, twin, manifest);
    expect(session.inputs).toEqual([expect.objectContaining({ name: 'image', dtype: 'float32' })]);
    expect(session.inputs[0]?.shape).toEqual(manifest.inputs[0]?.shape);
    expect(session.outputs[0]).toMatchObject({ name: 'logits', dtype: 'float32' });
    const inputs = Object.fromEntries(Object.entries(smoke.inputs).map(([k, t]) => [k, decodeTensor(t)]));
    const expected = smoke.expected[twin.file];
    const want = decodeTensor(expected?.outputs.logits as never);
    const got = (await session.run(inputs)).logits as PlainTensor;
    expect(got.shape).toEqual([1, 10]);
    const diff = Math.max(
      ...Array.from(got.data as Float32Array, (v, i) => Math.abs(v - Number(want.data[i]))),
    );
    // Same file, same TFLite build: identical here; the bundle allows two quantization steps.
    expect(diff).toBeLessThanOrEqual(expected?.tolerance.maxAbs as number);
    expect(diff).toBe(0);
  });

  it('falls back from the Edge TPU model to the CPU twin, recording "accelerator missing"', async () => {
    expect(findLibEdgeTpu().path).toBeUndefined(); // this machine has no Coral runtime
    const twin = manifest.artifacts.find((a) => a.file === 'edgetpu/model_int8.tflite') as ArtifactEntry;
    const compiled: ArtifactEntry = {
      ...twin,
      file: 'edgetpu/model_int8_edgetpu.tflite',
      target: 'edgetpu',
      requires: ['edgetpu'],
      fallback: twin.file,
    };
    const withTpu = { ...manifest, artifacts: [compiled, twin] };
    await writeFile(
      join(dir, 'model_int8_edgetpu.tflite'),
      await readFile(join(models, 'keras_lstm_mnist_ptq_edgetpu.tflite')),
    );
    const registry = new BackendRegistry();
    registry.register(onnxBackend());
    registry.register(edgeTpuBackend());
    registry.register(tfliteBackend());
    const statuses = await registry.status();
    expect(statuses.map((s) => s.name)).toEqual(['tflite+edgetpu', 'onnxruntime-cpu', 'tflite']);
    expect(statuses[0]).toMatchObject({
      available: false,
      reason: expect.stringMatching(/^accelerator missing: /),
    });
    expect(statuses[2]).toEqual({ name: 'tflite', available: true });

    const session = await registry.load(join(dir, 'model_int8_edgetpu.tflite'), compiled, withTpu);
    expect(session.backend).toBe('tflite');
    expect(session.fallback).toEqual({
      from: 'edgetpu/model_int8_edgetpu.tflite',
      to: 'edgetpu/model_int8.tflite',
      reason: expect.stringMatching(/^tflite\+edgetpu: accelerator missing: libedgetpu\.so\.1 not found/),
    });
    const inputs = Object.fromEntries(Object.entries(smoke.inputs).map(([k, t]) => [k, decodeTensor(t)]));
    const want = decodeTensor(smoke.expected[twin.file]?.outputs.logits as never);
    expect(Array.from((await session.run(inputs)).logits?.data as Float32Array)).toEqual(
      Array.from(want.data as Float32Array),
    );

    // Without the twin beside it there is nothing to run, and the error says why.
    const alone = join(dir, 'alone');
    await mkdir(alone, { recursive: true });
    await writeFile(join(alone, 'model_int8_edgetpu.tflite'), 'x');
    await expect(registry.load(join(alone, 'model_int8_edgetpu.tflite'), compiled, withTpu)).rejects.toThrow(
      /accelerator missing.*; its fallback edgetpu\/model_int8\.tflite is not on the device/,
    );
  });

  it('with libedgetpu present but unusable, the delegate’s failure is the recorded reason', async () => {
    const libDir = join(dir, 'lib');
    await mkdir(libDir, { recursive: true });
    await writeFile(join(libDir, 'libedgetpu.so.1'), 'not a shared library');
    const backend = edgeTpuBackend({ libraryDirs: [libDir] });
    expect(await backend.availability()).toEqual({ available: true });
    const twin = manifest.artifacts.find((a) => a.file === 'edgetpu/model_int8.tflite') as ArtifactEntry;
    const compiled = { ...twin, file: 'edgetpu/model_int8_edgetpu.tflite', target: 'edgetpu' as const };
    await expect(backend.load(join(dir, 'model_int8_edgetpu.tflite'), compiled, manifest)).rejects.toThrow(
      /TFLite cannot load edgetpu\/model_int8_edgetpu\.tflite/,
    );
  });

  it('installs an Edge TPU artifact without libedgetpu: fetches the twin, runs it, passes the smoke test', async () => {
    const manifestOfTpu = JSON.parse(new TextDecoder().decode(tpu.manifestBytes)) as BundleManifest;
    const compiled = manifestOfTpu.artifacts[0] as ArtifactEntry;
    const bySha = new Map<string, Uint8Array>();
    for (const bytes of tpu.files.values()) bySha.set(await sha256Hex(bytes), bytes);
    const fetched: string[] = [];
    const dataDir = join(dir, 'agent');
    const registry = new BackendRegistry();
    registry.register(onnxBackend());
    registry.register(edgeTpuBackend());
    registry.register(tfliteBackend());
    const prepared = await prepareModel(
      {
        dataDir,
        store: new ModelStore(dataDir),
        hub: undefined as never, // the manifest comes inline, as the hub sends it
        registry,
        trustedKeys: () => [publicKeyOf(key)],
        logger: quiet,
        fetchBlob: async (sha256, part) => {
          fetched.push(sha256);
          await writeFile(part, bySha.get(sha256) as Uint8Array);
        },
      },
      'cnn',
      {
        name: 'cnn',
        version: '1.0.0',
        deploymentId: 'd1',
        artifact: {
          sha256: compiled.sha256,
          size_bytes: compiled.size_bytes,
          target: compiled.target,
          runtime: compiled.runtime,
          precision: compiled.precision,
          file: compiled.file,
        },
        manifest: toBase64(tpu.manifestBytes),
        signature: tpu.signature,
      },
      { dirPrefix: '', installedVersion: undefined, rollbackTo: [], step: () => undefined },
    );
    const twin = manifestOfTpu.artifacts[1] as ArtifactEntry;
    expect(fetched).toContain(twin.sha256); // the twin came along with the compiled model
    expect(prepared.artifact.file).toBe('edgetpu/model_int8_edgetpu.tflite');
    expect(prepared.session.backend).toBe('tflite');
    expect(prepared.session.fallback).toMatchObject({ to: 'edgetpu/model_int8.tflite' });
    expect(prepared.session.fallback?.reason).toMatch(/accelerator missing/);
    await prepared.session.close();
  });
});
