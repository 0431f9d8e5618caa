/**
 * The SDK's hub-free core (`loadFromManifest`) in Node, with onnxruntime-web's real WASM engine:
 * signatures, hashes, the cache, and every fallback stage, on bundles signed here.
 */
import {
  type BundleManifestInput,
  describeFile,
  encodeTensor,
  generateSigningKey,
  type PackedBundle,
  packBundle,
  publicKeyOf,
  type SigningKeyFile,
  sha256Hex,
  unpackBundle,
} from '@edgefleet/bundle';
import { buildModel, mlpModel, packageOnnx, runOnnx } from '@edgefleet/converters';
import * as ort from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type Capabilities,
  type LoadFromManifestOptions,
  loadFromManifest,
  memoryArtifactCache,
} from '../packages/web/src/index.ts';
import { maxAbsDiff } from './support/browser-sdk-models.ts';

const noGpu: Capabilities = {
  webgpu: { available: false, reason: 'Node', features: [] },
  cacheApi: false,
  crossOriginIsolated: false,
  hardwareConcurrency: 2,
  userAgent: 'node',
};
const MLP = mlpModel({ inputs: 4, hidden: [8], outputs: 3, softmax: true, seed: 2 });
// Opens fine (the input is dynamic) but cannot run on 4 values: Reshape to [3].
const RUN_FAILS = buildModel({
  inputs: [{ name: 'input', shape: ['batch', 4] }],
  outputs: [{ name: 'output', shape: [3] }],
  nodes: [{ op: 'Reshape', inputs: ['input', 'shape'], outputs: ['output'] }],
  initializers: [{ name: 'shape', dims: [1], data: new BigInt64Array([3n]) }],
});
const x = [0.5, -1, 2, 0.25];

/** A store of files by sha256, counting fetches. */
function store(files: Iterable<Uint8Array>) {
  const bySha = new Map<string, Uint8Array>();
  const fetched: string[] = [];
  return {
    async add() {
      for (const f of files) bySha.set(await sha256Hex(f), f);
    },
    fetched,
    fetchArtifact: async (sha: string) => {
      fetched.push(sha);
      const bytes = bySha.get(sha);
      if (!bytes) throw new Error(`no file ${sha}`);
      return bytes;
    },
  };
}

/** A bundle with the given ONNX files as cpu artifacts (first listed = first tried), optional smoke test. */
async function customBundle(
  key: SigningKeyFile,
  artifacts: { file: string; precision: 'int8' | 'fp32'; bytes: Uint8Array; expected?: Uint8Array }[],
  options: { smoke?: boolean; expiresAt?: string } = {},
): Promise<PackedBundle> {
  const files = new Map<string, Uint8Array>();
  const entries: BundleManifestInput['artifacts'] = [];
  for (const a of artifacts) {
    files.set(a.file, a.bytes);
    entries.push({
      ...(await describeFile(a.file, a.bytes)),
      target: 'cpu',
      runtime: 'onnxruntime',
      precision: a.precision,
    });
  }
  const input = { dtype: 'float32' as const, shape: [1, 4], data: Float32Array.from(x) };
  let smokeTest: BundleManifestInput['smokeTest'];
  if (options.smoke) {
    const expected: Record<string, unknown> = {};
    for (const a of artifacts) {
      const outputs = await runOnnx(a.expected ?? a.bytes, { input });
      expected[a.file] = {
        outputs: Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, encodeTensor(t)])),
        tolerance: { maxAbs: 1e-4 },
      };
    }
    const smoke = new TextEncoder().encode(
      JSON.stringify({ inputs: { input: encodeTensor(input) }, expected }),
    );
    files.set('smoke-test.json', smoke);
    smokeTest = await describeFile('smoke-test.json', smoke);
  }
  return packBundle(
    {
      format: 'edgefleet-bundle',
      formatVersion: 1,
      name: 'custom',
      version: '1.0.0',
      createdAt: '2026-01-01T00:00:00Z',
      ...(options.expiresAt ? { expiresAt: options.expiresAt } : {}),
      source: { format: 'onnx', ...(await describeFile('source.onnx', MLP)) },
      inputs: [{ name: 'input', shape: ['batch', 4], dtype: 'float32' }],
      outputs: [{ name: 'output', shape: ['batch', 3], dtype: 'float32' }],
      artifacts: entries,
      ...(smokeTest ? { smokeTest } : {}),
    },
    files,
    key,
  );
}

describe('loadFromManifest (no hub, onnxruntime-web WASM in Node)', () => {
  let key: SigningKeyFile;
  let packed: PackedBundle;
  let reference: number[];
  const open = async (bundle: PackedBundle, extra: Partial<LoadFromManifestOptions> = {}) => {
    const files = store((await unpackBundle(bundle.bytes)).files.values());
    await files.add();
    const model = await loadFromManifest(bundle.manifestBytes, bundle.signature, {
      trustedKeys: [publicKeyOf(key)],
      fetchArtifact: files.fetchArtifact,
      runtimes: { onnx: async () => ort },
      capabilities: noGpu,
      cache: false,
      ...extra,
    });
    return { model, files };
  };

  beforeAll(async () => {
    key = await generateSigningKey();
    packed = await packageOnnx({ source: MLP, name: 'mlp', version: '1.0.0', key });
    const out = await runOnnx(MLP, {
      input: { dtype: 'float32', shape: [1, 4], data: Float32Array.from(x) },
    });
    reference = Array.from(out.output?.data as Float32Array);
  });

  it('verifies, smoke-tests and runs a published bundle, matching onnxruntime-node', async () => {
    const { model } = await open(packed);
    expect(model.backend).toMatchObject({
      engine: 'onnxruntime-web',
      executionProvider: 'wasm',
      profile: 'browser-wasm',
      probe: 'smoke-test',
      cache: 'uncached',
      signedBy: key.keyId,
      fallbacks: [],
    });
    expect(model.backend.agreement?.maxAbs).toBeLessThan(1e-6);
    const out = await model.predict(x);
    expect(out.output?.shape).toEqual([1, 3]);
    expect(maxAbsDiff(Array.from(out.output?.data as Float32Array), reference)).toBeLessThan(1e-6);
    await model.dispose();
    await expect(model.predict(x)).rejects.toMatchObject({ code: 'WEB_MODEL_DISPOSED' });
  });

  it('refuses untrusted, tampered, unsigned and expired manifests', async () => {
    const stranger = await generateSigningKey();
    await expect(open(packed, { trustedKeys: [publicKeyOf(stranger)] })).rejects.toMatchObject({
      code: 'BUNDLE_UNTRUSTED_KEY',
    });
    const tampered = packed.manifestBytes.slice();
    tampered[tampered.length - 2] = 0x20; // whitespace only: still valid JSON, but not what was signed
    await expect(open({ ...packed, manifestBytes: tampered })).rejects.toMatchObject({
      code: 'BUNDLE_SIGNATURE_INVALID',
    });
    await expect(
      loadFromManifest(packed.manifestBytes, undefined, {
        trustedKeys: [publicKeyOf(key)],
        fetchArtifact: async () => new Uint8Array(),
        runtimes: {},
        capabilities: noGpu,
      }),
    ).rejects.toMatchObject({ code: 'BUNDLE_UNSIGNED' });
    const expired = await customBundle(key, [{ file: 'cpu/model.onnx', precision: 'fp32', bytes: MLP }], {
      expiresAt: '2026-02-01T00:00:00Z',
    });
    await expect(open(expired, { clock: () => new Date('2026-03-01T00:00:00Z') })).rejects.toMatchObject({
      code: 'BUNDLE_EXPIRED',
    });
  });

  it('refuses bytes that do not match the signed sha256, and never caches them', async () => {
    const cache = memoryArtifactCache();
    const [artifact] = packed.manifest.artifacts;
    const error = await loadFromManifest(packed.manifestBytes, packed.signature, {
      trustedKeys: [publicKeyOf(key)],
      fetchArtifact: async (sha) =>
        sha === artifact?.sha256 ? MLP.slice(0, -1) : (await open(packed)).files.fetchArtifact(sha),
      runtimes: { onnx: async () => ort },
      capabilities: noGpu,
      cache,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'WEB_ARTIFACT_HASH_MISMATCH',
      details: { expected: artifact?.sha256 },
    });
    expect(await cache.get(artifact?.sha256 ?? '')).toBeUndefined();
  });

  it('reads the second load from the cache, and re-fetches a cached copy that went bad', async () => {
    const cache = memoryArtifactCache();
    const first = await open(packed, { cache });
    expect(first.model.backend.cache).toBe('miss');
    const second = await open(packed, { cache });
    expect(second.model.backend.cache).toBe('hit');
    expect(second.files.fetched).toEqual([]);
    const sha = packed.manifest.artifacts[0]?.sha256 ?? '';
    await cache.put(sha, new Uint8Array([1, 2, 3]));
    const third = await open(packed, { cache });
    expect(third.model.backend.cache).toBe('miss');
    expect(third.files.fetched).toContain(sha);
    expect(
      maxAbsDiff(Array.from((await third.model.predict(x)).output?.data as Float32Array), reference),
    ).toBeLessThan(1e-6);
  });

  it('falls back past an artifact that will not open', async () => {
    const bundle = await customBundle(key, [
      { file: 'cpu/model-int8.onnx', precision: 'int8', bytes: new TextEncoder().encode('not a model') },
      { file: 'cpu/model.onnx', precision: 'fp32', bytes: MLP },
    ]);
    const { model } = await open(bundle);
    expect(model.backend.artifact.file).toBe('cpu/model.onnx');
    expect(model.backend.probe).toBe('synthetic');
    expect(model.backend.fallbacks).toEqual([
      expect.objectContaining({ file: 'cpu/model-int8.onnx', stage: 'session', executionProvider: 'wasm' }),
    ]);
  });

  it('falls back past an artifact whose outputs disagree with the smoke test', async () => {
    const wrong = mlpModel({ inputs: 4, hidden: [8], outputs: 3, softmax: true, seed: 2, negate: true });
    const bundle = await customBundle(
      key,
      [
        { file: 'cpu/model-int8.onnx', precision: 'int8', bytes: wrong, expected: MLP },
        { file: 'cpu/model.onnx', precision: 'fp32', bytes: MLP },
      ],
      { smoke: true },
    );
    const { model } = await open(bundle);
    expect(model.backend.artifact.file).toBe('cpu/model.onnx');
    expect(model.backend.fallbacks[0]).toMatchObject({ file: 'cpu/model-int8.onnx', stage: 'smoke-test' });
    expect(model.backend.fallbacks[0]?.error.message).toMatch(/differs from the smoke test/);
  });

  it('falls back at the first run, and inside the first predict() when there was no probe', async () => {
    const bundle = await customBundle(key, [
      { file: 'cpu/model-int8.onnx', precision: 'int8', bytes: RUN_FAILS },
      { file: 'cpu/model.onnx', precision: 'fp32', bytes: MLP },
    ]);
    const probed = await open(bundle);
    expect(probed.model.backend.fallbacks).toEqual([expect.objectContaining({ stage: 'first-run' })]);

    const { model } = await open(bundle, { probe: 'none' });
    expect(model.backend.artifact.file).toBe('cpu/model-int8.onnx');
    const out = await model.predict(x);
    expect(model.backend.artifact.file).toBe('cpu/model.onnx');
    expect(model.backend.fallbacks).toEqual([
      expect.objectContaining({ file: 'cpu/model-int8.onnx', stage: 'first-run' }),
    ]);
    expect(maxAbsDiff(Array.from(out.output?.data as Float32Array), reference)).toBeLessThan(1e-6);
  });

  it('answers bad input with a typed error and keeps working', async () => {
    const { model } = await open(packed);
    await expect(model.predict([1, 2, 3])).rejects.toMatchObject({ code: 'WEB_INPUT_INVALID' });
    await expect(model.predict({ nope: [1, 2, 3, 4] })).rejects.toMatchObject({ code: 'WEB_INPUT_INVALID' });
    await expect(model.predict('text' as never)).rejects.toMatchObject({ code: 'WEB_INPUT_INVALID' });
    await expect(model.predict({ data: [...x, ...x], shape: [2, 4] })).rejects.toThrow(
      "shape [2,4] does not fit the model's [1,4]",
    );
    expect(model.backend.fallbacks).toEqual([]);
    expect((await model.predict({ data: x, shape: [1, 4] })).output?.shape).toEqual([1, 3]);
  });

  it('runs predictions one at a time, in call order', async () => {
    const { model } = await open(packed);
    const seen: number[] = [];
    model.observe((e) => seen.push(e.inputs.input?.data[0] as number));
    await Promise.all([1, 2, 3, 4, 5].map((v) => model.predict([v, 0, 0, 0])));
    expect(seen).toEqual([1, 2, 3, 4, 5]);
  });

  it('says plainly when no artifact can run in a browser', async () => {
    const bundle = await customBundle(key, [
      { file: 'cpu/model.onnx', precision: 'fp32', bytes: new TextEncoder().encode('broken') },
    ]);
    await expect(open(bundle)).rejects.toMatchObject({
      code: 'WEB_NO_RUNNABLE_ARTIFACT',
      message: expect.stringMatching(/cpu\/model.onnx on wasm \(session:/),
    });
    await expect(open(packed, { runtimes: {} })).rejects.toMatchObject({ code: 'WEB_NO_RUNNABLE_ARTIFACT' });
  });
});
