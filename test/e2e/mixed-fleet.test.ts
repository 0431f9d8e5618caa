/**
 * A mixed fleet gets three different artifacts of one model version, end to end on a real hub:
 *
 * - the version: a CNN converted by the converters for `cpu`, `webgpu` and `edgetpu` in one run and
 *   packed into one signed bundle (int8 ONNX for CPUs, fp16 ONNX for WebGPU, a compiled
 *   `_edgetpu.tflite` with its full-int8 CPU twin). There is no edgetpu_compiler here: a stand-in
 *   (test/support/edgetpu-stand-in.ts) puts the Edge TPU package of a real compiled model from
 *   ../shared around the twin's I/O, and the converters' own acceptance check takes it;
 * - an x64 agent process (generic `linux-x64` profile, detected) gets the int8 ONNX file and serves it;
 * - a Coral agent process (`--profile rpi-coral-usb`, with a libedgetpu.so.1 on its library path that
 *   is not a usable library, so it reports `tflite+edgetpu` available as a Coral host does) gets the
 *   compiled Edge TPU file; loading it fails on this machine, so it runs and serves the CPU twin that
 *   came along, and says so in its telemetry;
 * - a browser enrolled through the SDK's own enrollment code (`POST /api/v1/browser/enroll`, facts of
 *   a GPU with `shader-f16`) gets the fp16 WebGPU file. It is not run here (no Chromium needed):
 *   test/browser-sdk*.test.ts run such files in Chromium.
 *
 * The hub's choice is read back from the API (rollout devices and device detail, with the reason),
 * and must give three different files; the agents' answers are checked against what the artifacts
 * compute outside the agents.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ArtifactEntry,
  type BundleManifest,
  decodeTensor,
  generateSigningKey,
  type PlainTensor,
  type SmokeTestFile,
  unpackBundle,
} from '@edgefleet/bundle';
import { buildCnnClassifier, cnnSamples, convertModel, packConversion, runOnnx } from '@edgefleet/converters';
import { type Capabilities, ensureEnrolled, hubClient } from '@edgefleet/web';
import { afterAll, describe, expect, it } from 'vitest';
import { installStandInCompiler } from '../support/edgetpu-stand-in.ts';
import { type AgentProc, hubApi, runCli, spawnAgent, spawnHub } from '../support/processes.ts';
import { requireService, sharedDir, waitFor } from '../support/services.ts';

const shared = await requireService('shared');

const MODEL = 'classifier';
const VERSION = '1.0.0';
const CPU_FILE = 'cpu/model-int8.onnx';
const WEB_FILE = 'webgpu/model-fp16.onnx';
const TPU_FILE = 'edgetpu/model_int8_edgetpu.tflite';
const TWIN_FILE = 'edgetpu/model_int8.tflite';

interface DeviceView {
  id: string;
  name: string;
  status: string;
  profile: string | null;
  reported: { runtimes: { name: string; available: boolean; reason?: string }[] } | null;
  desired: { models: Record<string, { version: string; artifact: { sha256: string; file: string } }> } | null;
  lastTelemetry: { notes?: string[] } | null;
}
interface RolloutView {
  state: string;
  devices: { deviceId: string; state: string; artifactSha256: string | null; reason: string | null }[];
}

/** A browser with a hardware WebGPU adapter that has `shader-f16`, as `detectCapabilities` reports it. */
const gpuBrowser: Capabilities = {
  webgpu: {
    available: true,
    features: ['shader-f16', 'timestamp-query'],
    adapter: { vendor: 'nvidia', architecture: 'ampere', description: 'test GPU', isFallbackAdapter: false },
  },
  cacheApi: true,
  crossOriginIsolated: false,
  hardwareConcurrency: 8,
  deviceMemoryGb: 8,
  userAgent: 'Mozilla/5.0 (X11; Linux x86_64) edgefleet mixed-fleet test',
};

function memoryStorage() {
  const items = new Map<string, string>();
  return {
    getItem: (k: string) => items.get(k) ?? null,
    setItem: (k: string, v: string) => void items.set(k, v),
    removeItem: (k: string) => void items.delete(k),
  };
}

async function infer(agent: AgentProc, feeds: Record<string, PlainTensor>) {
  const response = await fetch(`${agent.inferenceUrl}/models/${MODEL}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: Object.entries(feeds).map(([name, t]) => ({
        name,
        shape: t.shape,
        datatype: 'FP32',
        data: Array.from(t.data as Float32Array),
      })),
    }),
  });
  const body = (await response.json()) as {
    model_version: string;
    outputs: { name: string; shape: number[]; data: number[] }[];
  };
  expect(response.status, JSON.stringify(body)).toBe(200);
  return body;
}

async function metadata(agent: AgentProc) {
  const response = await fetch(`${agent.inferenceUrl}/models/${MODEL}`);
  expect(response.status).toBe(200);
  return (await response.json()) as { platform: string; parameters: { artifact: string; sha256: string } };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Math.max(...Array.from(a, (v, i) => Math.abs(Number(v) - Number(b[i]))));

describe.skipIf(!shared.available)('a mixed fleet: one model version, three artifacts', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('gives an x64 agent, a Coral agent and a browser three different artifacts; the agents serve theirs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ef-mixed-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));

    // 1. One version with all three kinds of artifact, from one conversion.
    const compiler = await installStandInCompiler(
      join(dir, 'compiler'),
      join(sharedDir(), 'models/tflite/keras_lstm_mnist_ptq_edgetpu.tflite'),
    );
    const before = process.env.EDGEFLEET_EDGETPU_COMPILER;
    process.env.EDGEFLEET_EDGETPU_COMPILER = compiler;
    let packed: Awaited<ReturnType<typeof packConversion>>;
    const source = await buildCnnClassifier();
    const key = await generateSigningKey();
    try {
      const samples = (n: number, seed: number) => ({
        samples: cnnSamples(n, seed, 1.0).samples,
        origin: 'given' as const,
        description: `${n} CNN samples`,
      });
      const result = await convertModel(source, {
        targets: ['cpu', 'webgpu', 'edgetpu'],
        calibration: samples(100, 2000),
        verification: samples(40, 3000),
      });
      packed = await packConversion(result, { name: MODEL, version: VERSION, key });
    } finally {
      if (before === undefined) delete process.env.EDGEFLEET_EDGETPU_COMPILER;
      else process.env.EDGEFLEET_EDGETPU_COMPILER = before;
    }
    const bundle = await unpackBundle(packed.bytes, { trustedKeys: [key] });
    const manifest: BundleManifest = bundle.manifest;
    const artifact = (file: string) => {
      const a = manifest.artifacts.find((x) => x.file === file);
      expect(a, `${file} in ${manifest.artifacts.map((x) => x.file).join(', ')}`).toBeDefined();
      return a as ArtifactEntry;
    };
    const [cpu, web, tpu, twin] = [
      artifact(CPU_FILE),
      artifact(WEB_FILE),
      artifact(TPU_FILE),
      artifact(TWIN_FILE),
    ];
    expect(cpu).toMatchObject({ target: 'cpu', precision: 'int8', runtime: 'onnxruntime' });
    expect(web).toMatchObject({ target: 'webgpu', precision: 'fp16', runtime: 'onnxruntime' });
    expect(tpu).toMatchObject({ target: 'edgetpu', runtime: 'tflite', fallback: TWIN_FILE });
    expect(twin).toMatchObject({ target: 'tflite', runtime: 'tflite' });
    const efb = join(dir, 'classifier.efb');
    await writeFile(efb, packed.bytes);

    // 2. A hub; the version published with the CLI, signed by a registered publisher key.
    const hub = await spawnHub({ dataDir: join(dir, 'hub') });
    cleanups.push(() => hub.kill());
    const env = { EDGEFLEET_HUB: hub.url, EDGEFLEET_TOKEN: hub.adminToken };
    const api = hubApi(hub.url, hub.adminToken);
    await api('POST', '/keys', { name: 'release', publicKey: key.publicKey });
    const published = await runCli(['publish', efb, '--model', MODEL, '--version', VERSION, '--json'], env);
    expect(published.code, published.stderr).toBe(0);

    const token = await runCli(['token', 'create', '--uses', '3', '--tags', 'mixed'], env);
    expect(token.code, token.stderr).toBe(0);
    const enrollToken = token.stdout.trim();

    // 3. The fleet. An x64 box, profile detected (linux-x64 here).
    const x64 = await spawnAgent([
      '--hub',
      hub.url,
      '--enroll-token',
      enrollToken,
      '--data',
      join(dir, 'x64'),
      '--name',
      'x64-box',
      '--telemetry-interval',
      '2',
    ]);
    cleanups.push(() => x64.kill());
    // A Pi with a Coral USB Accelerator: libedgetpu is "installed" (found on the library path) but
    // this machine has no Edge TPU, so the delegate cannot load and the agent runs the twin.
    const libDir = join(dir, 'libedgetpu');
    await mkdir(libDir, { recursive: true });
    await writeFile(join(libDir, 'libedgetpu.so.1'), 'not a shared library: this machine has no Edge TPU');
    const coral = await spawnAgent(
      [
        '--hub',
        hub.url,
        '--enroll-token',
        enrollToken,
        '--data',
        join(dir, 'coral'),
        '--name',
        'pi-coral',
        '--profile',
        'rpi-coral-usb',
        '--telemetry-interval',
        '2',
      ],
      { LD_LIBRARY_PATH: libDir },
    );
    cleanups.push(() => coral.kill());
    // A browser page, enrolled by the SDK's own code with a GPU browser's capabilities.
    const browser = await ensureEnrolled(
      hubClient({ hub: hub.url }),
      hub.url,
      enrollToken,
      gpuBrowser,
      memoryStorage(),
      'kiosk',
    );
    if (!browser.enrolled) throw new Error(`browser enrollment failed: ${browser.reason}`);
    expect(browser.credentials.profile).toBe('browser-webgpu');

    const device = async (id: string) => api<DeviceView>('GET', `/devices/${id}`);
    const byName = async () =>
      new Map((await api<{ devices: DeviceView[] }>('GET', '/devices')).devices.map((d) => [d.name, d]));
    // Both agents online and their runtimes reported (what the choice reads).
    await waitFor(
      async () => {
        const d = await byName();
        return ['x64-box', 'pi-coral'].every(
          (n) => d.get(n)?.status === 'online' && (d.get(n)?.reported?.runtimes.length ?? 0) > 0,
        );
      },
      'both agents online with their runtimes reported',
      60_000,
    );
    const fleet = await byName();
    const x64Id = fleet.get('x64-box')?.id as string;
    const coralId = fleet.get('pi-coral')?.id as string;
    const browserId = browser.credentials.deviceId;
    expect(fleet.get('x64-box')?.profile).toBe('linux-x64');
    expect(fleet.get('pi-coral')?.profile).toBe('rpi-coral-usb');
    expect(fleet.get('kiosk')?.profile).toBe('browser-webgpu');
    const edgeTpuRuntime = (d: DeviceView | undefined) =>
      d?.reported?.runtimes.find((r) => r.name === 'tflite+edgetpu');
    expect(edgeTpuRuntime(fleet.get('pi-coral'))).toMatchObject({ available: true });
    expect(edgeTpuRuntime(fleet.get('x64-box'))).toMatchObject({ available: false });

    // 4. Roll the version out to all three at once.
    const deployed = await runCli(
      ['deploy', `${MODEL}@${VERSION}`, '--to', 'tag:mixed', '--batches', '100%'],
      env,
    );
    expect(deployed.code, deployed.stderr).toBe(0);
    const rolloutId = deployed.stdout.trim();
    const rollout = () => api<RolloutView>('GET', `/rollouts/${rolloutId}`);
    await waitFor(
      async () => {
        const r = await rollout();
        return r.devices.length === 3 && r.devices.every((d) => d.artifactSha256 !== null);
      },
      'every device assigned an artifact',
      60_000,
    );

    // 5. The hub's choice, and why, per device: three different files of the one version.
    const assigned = new Map((await rollout()).devices.map((d) => [d.deviceId, d]));
    const expected = new Map([
      [x64Id, cpu],
      [coralId, tpu],
      [browserId, web],
    ]);
    for (const [id, want] of expected) {
      const got = assigned.get(id);
      expect(got?.artifactSha256, `${id}: ${got?.reason}`).toBe(want.sha256);
      const detail = await device(id);
      expect(detail.desired?.models[MODEL]).toMatchObject({
        version: VERSION,
        artifact: { sha256: want.sha256, file: want.file },
      });
    }
    expect(new Set([...assigned.values()].map((d) => d.artifactSha256)).size).toBe(3);
    expect(assigned.get(x64Id)?.reason).toMatch(
      /^cpu\/int8 \(cpu\/model-int8\.onnx\) via onnxruntime-node: best linux-x64 can run; skipped edgetpu\/int8 \(no Edge TPU found on the device\)/,
    );
    expect(assigned.get(coralId)?.reason).toMatch(
      /^edgetpu\/int8 \(edgetpu\/model_int8_edgetpu\.tflite\) via tflite-edgetpu: first in rpi-coral-usb's preference order; the rpi-coral-usb profile includes the Coral USB Accelerator; falls back to edgetpu\/model_int8\.tflite/,
    );
    expect(assigned.get(browserId)?.reason).toMatch(
      /^webgpu\/fp16 \(webgpu\/model-fp16\.onnx\) via onnxruntime-web: first in browser-webgpu's preference order/,
    );

    // 6. The agents install theirs (download, verify, smoke test, switch) and report it active.
    await waitFor(
      async () => {
        const d = new Map((await rollout()).devices.map((m) => [m.deviceId, m.state]));
        return d.get(x64Id) === 'active' && d.get(coralId) === 'active';
      },
      'both agents active on their artifacts',
      120_000,
      250,
    );
    // The browser has its assignment; it turns active when a page loads the file and reports it.
    expect(assigned.get(browserId)?.state).toBe('assigned');

    const smoke = JSON.parse(
      new TextDecoder().decode(bundle.files.get(manifest.smokeTest?.file as string)),
    ) as SmokeTestFile;
    const feeds = Object.fromEntries(Object.entries(smoke.inputs).map(([k, t]) => [k, decodeTensor(t)]));

    // The x64 agent serves the int8 ONNX file on onnxruntime: its answer is that file's answer.
    expect(await metadata(x64)).toMatchObject({
      platform: 'onnxruntime-cpu',
      parameters: { artifact: CPU_FILE, sha256: cpu.sha256 },
    });
    const x64Answer = await infer(x64, feeds);
    expect(x64Answer.model_version).toBe(VERSION);
    const cpuBytes = bundle.files.get(CPU_FILE) as Uint8Array;
    const outside = await runOnnx(cpuBytes, feeds);
    for (const out of x64Answer.outputs) {
      const want = outside[out.name] as PlainTensor;
      expect(out.shape).toEqual(want.shape);
      expect(maxAbsDiff(out.data, want.data as Float32Array)).toBeLessThan(1e-4);
    }

    // The Coral agent installed the compiled file, cannot load it here, and serves its CPU twin
    // through TFLite: the answer is the twin's, as the converters' interpreter computed it.
    expect(await metadata(coral)).toMatchObject({
      platform: 'tflite',
      parameters: { artifact: TPU_FILE, sha256: tpu.sha256 },
    });
    const coralAnswer = await infer(coral, feeds);
    expect(coralAnswer.model_version).toBe(VERSION);
    const twinExpected = smoke.expected[TWIN_FILE];
    expect(twinExpected).toBeDefined();
    for (const out of coralAnswer.outputs) {
      const want = decodeTensor(twinExpected?.outputs[out.name] as never);
      expect(out.shape).toEqual(want.shape);
      expect(maxAbsDiff(out.data, want.data as Float32Array)).toBeLessThanOrEqual(
        twinExpected?.tolerance.maxAbs as number,
      );
    }
    // Two runtimes, two files, one version: the answers are close, not identical.
    expect(maxAbsDiff(x64Answer.outputs[0]?.data ?? [], coralAnswer.outputs[0]?.data ?? [])).toBeGreaterThan(
      0,
    );
    // And the Coral says why it runs the twin.
    await waitFor(
      async () =>
        (await device(coralId)).lastTelemetry?.notes?.some((n) =>
          n.includes(`runs ${TWIN_FILE} instead of ${TPU_FILE}`),
        ) === true,
      'the Coral agent reporting its fallback to the CPU twin',
      60_000,
    );
  }, 420_000);
});
