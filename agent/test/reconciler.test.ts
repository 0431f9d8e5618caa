/**
 * Reconciling the desired state on real parts (disk, onnxruntime-node, an HTTP artifact server):
 * a signed model goes through each deployment state to active; unsigned, foreign-signed,
 * tampered, expired and downgraded bundles are refused before any download; a model that does not
 * load or fails its smoke test is reported failed while the current one keeps serving.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  decodeTensor,
  generateSigningKey,
  type SigningKeyFile,
  smokeTestFile,
  toBase64,
} from '@edgefleet/bundle';
import { runOnnx } from '@edgefleet/converters';
import type { DesiredModel } from '@edgefleet/protocol';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/services.ts';
import {
  type ArtifactServer,
  desiredFor,
  desiredState,
  makeBundle,
  type Rig,
  resign,
  startArtifactServer,
  startRig,
  type TestBundle,
} from './fixtures.ts';

let key: SigningKeyFile;
let server: ArtifactServer;
let v1: TestBundle;
let v2: TestBundle;
let v3: TestBundle;
let dataDir: string;
let rig: Rig;
let deployments = 0;

const input = {
  input: { dtype: 'float32' as const, shape: [1, 4], data: Float32Array.from([0.5, -1, 2, 0.25]) },
};

beforeAll(async () => {
  key = await generateSigningKey();
  server = await startArtifactServer();
  v1 = await makeBundle(key, { version: '1.0.0', seed: 1 });
  v2 = await makeBundle(key, { version: '1.1.0', seed: 2 });
  v3 = await makeBundle(key, { version: '1.2.0', seed: 3 });
  for (const b of [v1, v2, v3]) server.add(b);
});
afterAll(async () => {
  await server?.close();
});
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'ef-reconcile-'));
  rig = startRig(dataDir, server, key);
  server.requests.length = 0;
});
afterEach(async () => {
  await rig.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** Desire `model` in slot m and wait until the reconciler settles on it (active or failed). */
async function deploy(model: DesiredModel): Promise<void> {
  rig.reconciler.apply(desiredState({ m: model }));
  await waitFor(
    () => {
      const d = rig.reconciler.deployments.get('m');
      return d?.deploymentId === model.deploymentId && ['active', 'failed', 'rolled-back'].includes(d.state);
    },
    `deployment ${model.deploymentId} settled`,
    60_000,
  );
  await rig.reconciler.idle();
}
const next = (b: TestBundle, extra: Partial<DesiredModel> = {}) => desiredFor(b, `d${++deployments}`, extra);
const deployment = () => rig.reconciler.deployments.get('m');
const serving = () => rig.models.get('m')?.entry.version;
const artifactRequests = () => server.requests.filter((r) => r.path.includes('/artifacts/'));

async function outputsOf(bundle: TestBundle): Promise<Float32Array> {
  const expected = await runOnnx(bundle.files.get(bundle.artifact.file) as Uint8Array, input);
  return expected.output?.data as Float32Array;
}

describe('installing', () => {
  it('takes a signed model through every deployment state to active, and serves it', async () => {
    await deploy(next(v1));
    expect(rig.states('m')).toEqual([
      'downloading',
      'verifying',
      'staged',
      'loading',
      'smoke-testing',
      'active',
    ]);
    expect(serving()).toBe('1.0.0');
    const { outputs } = await rig.models.infer('m', input);
    expect(Array.from(outputs.output?.data as Float32Array)).toEqual(Array.from(await outputsOf(v1)));
    const state = await rig.store.read('m');
    expect(state.active).toMatchObject({ version: '1.0.0', sha256: v1.artifact.sha256 });
    // No partial download is left behind once the model is in place.
    expect(await readdir(join(dataDir, 'downloads'))).toEqual([]);
  });

  it('fetches the manifest from the hub when the desired state does not carry it', async () => {
    const { manifest: _m, signature: _s, ...bare } = next(v1);
    await deploy(bare);
    expect(deployment()?.state).toBe('active');
    expect(server.requests.some((r) => r.path.endsWith('/models/m/versions/1.0.0/manifest'))).toBe(true);
  });

  it('switches to a newer version, keeps the previous one and prunes older ones', async () => {
    await deploy(next(v1));
    await deploy(next(v2));
    expect(serving()).toBe('1.1.0');
    let state = await rig.store.read('m');
    expect(state.previous?.version).toBe('1.0.0');
    await deploy(next(v3));
    state = await rig.store.read('m');
    expect([state.active?.version, state.previous?.version]).toEqual(['1.2.0', '1.1.0']);
    const dirs = (await readdir(rig.store.slotDir('m'))).filter((n) => n !== 'slot.json').sort();
    expect(dirs).toEqual([state.previous?.dir, state.active?.dir].sort());
    const { outputs } = await rig.models.infer('m', input);
    expect(Array.from(outputs.output?.data as Float32Array)).toEqual(Array.from(await outputsOf(v3)));
  });

  it('does nothing when the desired model is already active', async () => {
    await deploy(next(v1));
    const before = server.requests.length;
    rig.reconciler.apply(
      desiredState({ m: { ...next(v1), deploymentId: deployment()?.deploymentId as string } }),
    );
    await rig.reconciler.idle();
    expect(server.requests.length).toBe(before);
    expect(deployment()?.state).toBe('active');
  });

  it('resumes the partial download a killed agent left behind, with a Range request', async () => {
    const bytes = v2.files.get(v2.artifact.file) as Uint8Array;
    const half = Math.floor(bytes.length / 2);
    await mkdir(join(dataDir, 'downloads'), { recursive: true });
    await writeFile(join(dataDir, 'downloads', `${v2.artifact.sha256}.part`), bytes.subarray(0, half));
    await deploy(next(v2));
    expect(deployment()?.state).toBe('active');
    const fetched = artifactRequests().filter((r) => r.path.endsWith(v2.artifact.sha256));
    expect(fetched).toEqual([
      expect.objectContaining({ range: `bytes=${half}-`, sent: bytes.length - half }),
    ]);
    const { outputs } = await rig.models.infer('m', input);
    expect(Array.from(outputs.output?.data as Float32Array)).toEqual(Array.from(await outputsOf(v2)));
  });

  it('retries when the connection drops mid-download, and activates the model', async () => {
    server.cutNextAfter(Math.floor(v2.artifact.size_bytes / 2));
    await deploy(next(v2)); // the first attempt fails transiently; the retry completes it
    expect(deployment()?.state).toBe('active');
    expect(artifactRequests().filter((r) => r.path.endsWith(v2.artifact.sha256)).length).toBe(2);
    expect(serving()).toBe('1.1.0');
  });

  it('retries after a corrupted download and never installs the corrupt bytes', async () => {
    server.corruptNext();
    await deploy(next(v1));
    expect(deployment()?.state).toBe('active');
    expect(artifactRequests().filter((r) => r.path.endsWith(v1.artifact.sha256)).length).toBe(2);
    const { outputs } = await rig.models.infer('m', input);
    expect(Array.from(outputs.output?.data as Float32Array)).toEqual(Array.from(await outputsOf(v1)));
  });

  it('removes a slot that is no longer desired', async () => {
    await deploy(next(v1));
    rig.reconciler.apply(desiredState({}));
    await rig.reconciler.idle();
    expect(rig.models.get('m')).toBeUndefined();
    expect(await rig.store.slots()).toEqual([]);
  });
});

describe('refusing bundles', () => {
  beforeEach(async () => {
    await deploy(next(v2));
    server.requests.length = 0;
  });

  async function expectRefused(model: DesiredModel, code: string) {
    await deploy(model);
    expect(deployment()).toMatchObject({ state: 'failed', error: { code } });
    expect(serving()).toBe('1.1.0');
    expect(artifactRequests()).toEqual([]); // refused before a byte of the artifact was fetched
    expect((await rig.store.read('m')).active?.version).toBe('1.1.0');
  }

  it('refuses a manifest signed by a key it does not trust', async () => {
    const stranger = await generateSigningKey();
    const forged = await resign(v3, stranger, {});
    await expectRefused(next(forged), 'BUNDLE_UNTRUSTED_KEY');
  });

  it('refuses a manifest changed after signing', async () => {
    const text = new TextDecoder().decode(v3.manifestBytes).replace('"1.2.0"', '"1.2.0" ');
    await expectRefused(
      next(v3, { manifest: toBase64(new TextEncoder().encode(text)) }),
      'BUNDLE_SIGNATURE_INVALID',
    );
  });

  it('refuses an unsigned manifest', async () => {
    const unsigned = await makeBundle(key, { version: '1.3.0', seed: 4 });
    server.add(unsigned, { unsigned: true });
    const { manifest: _m, signature: _s, ...bare } = next(unsigned);
    await expectRefused(bare, 'BUNDLE_UNSIGNED');
  });

  it('uses the hub’s signed manifest when the desired state carries no signature', async () => {
    await deploy(next(v3, { signature: undefined }));
    expect(deployment()?.state).toBe('active');
    expect(serving()).toBe('1.2.0');
  });

  it('refuses a malformed signature', async () => {
    await expectRefused(next(v3, { signature: { hello: 'world' } }), 'BUNDLE_SIGNATURE_INVALID');
  });

  it('refuses an expired bundle', async () => {
    const expired = await resign(v3, key, {
      manifest: (m) => ({ ...m, expiresAt: '2020-01-01T00:00:00.000Z' }),
    });
    await expectRefused(next(expired), 'BUNDLE_EXPIRED');
  });

  it('refuses a downgrade that is not a rollback', async () => {
    await expectRefused(next(v1), 'BUNDLE_DOWNGRADE');
  });

  it('refuses a rollback to a version this device never ran', async () => {
    await expectRefused(next(v1, { rollback: true }), 'BUNDLE_DOWNGRADE');
  });

  it('refuses an artifact the manifest does not list', async () => {
    const model = next(v3);
    await expectRefused(
      { ...model, artifact: { ...model.artifact, sha256: v1.artifact.sha256 } },
      'ARTIFACT_NOT_IN_MANIFEST',
    );
  });

  it('refuses a manifest for another model or version', async () => {
    const model = next(v3);
    await expectRefused({ ...model, version: '1.3.0' }, 'MANIFEST_MISMATCH');
  });

  it('does not retry a refused deployment, and reports it failed again', async () => {
    const model = next(v1);
    await expectRefused(model, 'BUNDLE_DOWNGRADE');
    rig.reconciler.apply(desiredState({ m: model }));
    await rig.reconciler.idle();
    expect(deployment()).toMatchObject({ state: 'failed', error: { code: 'BUNDLE_DOWNGRADE' } });
    expect(
      (await rig.store.read('m')).failed.filter((f) => f.deploymentId === model.deploymentId),
    ).toHaveLength(1);
  });
});

describe('rolling back', () => {
  it('returns to the kept previous version without downloading it', async () => {
    await deploy(next(v1));
    await deploy(next(v2));
    server.requests.length = 0;
    await deploy(next(v1, { rollback: true }));
    expect(deployment()?.state).toBe('active');
    expect(serving()).toBe('1.0.0');
    expect(artifactRequests()).toEqual([]);
    const { outputs } = await rig.models.infer('m', input);
    expect(Array.from(outputs.output?.data as Float32Array)).toEqual(Array.from(await outputsOf(v1)));
  });

  it('downloads again a version it ran before but pruned', async () => {
    await deploy(next(v1));
    await deploy(next(v2));
    await deploy(next(v3));
    await deploy(next(v1, { rollback: true }));
    expect(deployment()?.state).toBe('active');
    expect(serving()).toBe('1.0.0');
  });
});

describe('models that must not go live', () => {
  beforeEach(async () => {
    await deploy(next(v1));
  });

  it('keeps the current model when the new one fails its smoke test', async () => {
    const smokePath = v2.manifest.smokeTest?.file as string;
    const smoke = smokeTestFile.parse(JSON.parse(new TextDecoder().decode(v2.files.get(smokePath))));
    const [artifactFile, expected] = Object.entries(smoke.expected)[0] as [
      string,
      (typeof smoke.expected)[string],
    ];
    // Expectations that no correct run of v2 meets: every output shifted by 1.
    const outputs = Object.fromEntries(
      Object.entries(expected.outputs).map(([name, t]) => {
        const shifted = Float32Array.from(decodeTensor(t).data as Float32Array, (v) => v + 1);
        return [name, { ...t, data: toBase64(new Uint8Array(shifted.buffer)) }];
      }),
    );
    const wrong = JSON.stringify({ ...smoke, expected: { [artifactFile]: { ...expected, outputs } } });
    const broken = await resign(v2, key, { files: { [smokePath]: new TextEncoder().encode(wrong) } });
    server.add(broken);
    await deploy(next(broken));
    expect(deployment()).toMatchObject({ state: 'failed', error: { code: 'SMOKE_TEST_FAILED' } });
    expect(rig.states('m')).toContain('smoke-testing');
    expect(serving()).toBe('1.0.0');
    const { outputs: served } = await rig.models.infer('m', input);
    expect(Array.from(served.output?.data as Float32Array)).toEqual(Array.from(await outputsOf(v1)));
    expect((await rig.store.read('m')).active?.version).toBe('1.0.0');
  });

  it('keeps the current model when the new one does not load', async () => {
    const garbage = new TextEncoder().encode('this is not an ONNX model at all');
    const broken = await resign(v2, key, { files: { [v2.artifact.file]: garbage } });
    server.add(broken);
    await deploy(next(broken));
    expect(deployment()).toMatchObject({ state: 'failed', error: { code: 'MODEL_LOAD_FAILED' } });
    expect(serving()).toBe('1.0.0');
    expect((await rig.store.read('m')).active?.version).toBe('1.0.0');
    expect((await rig.models.infer('m', input)).model.entry.version).toBe('1.0.0');
  });
});
