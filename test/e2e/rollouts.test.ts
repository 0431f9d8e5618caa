/**
 * Staged rollouts with real agents: a 20-device fleet, live inference traffic, and models that
 * are good, crash on load, are 3× slower, or fail twice as often.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BundleManifestInput, describeFile, generateSigningKey, packBundle } from '@edgefleet/bundle';
import { buildModel, mlpModel } from '@edgefleet/converters';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AgentProc, type HubProc, hubApi, spawnAgent, spawnHub } from '../support/processes.ts';
import { waitFor } from '../support/services.ts';

const FLEET = 20;

interface RolloutView {
  id: string;
  state: string;
  stateReason: string | null;
  counts: Record<string, number>;
  devices: {
    deviceId: string;
    batch: number;
    state: string;
    assignedAt: string | null;
    activeAt: string | null;
  }[];
  gates: { readings: { gate: string; status: string; detail: string }[] } | null;
}

/** y = log(x[0] + c): NaN (an error) whenever x[0] < −c, so c sets the error rate under uniform(−1, 1) traffic. */
function logModel(c: number): Uint8Array {
  return buildModel({
    inputs: [{ name: 'input', shape: [1, 16] }],
    outputs: [{ name: 'output', shape: [1, 1] }],
    initializers: [
      { name: 'starts', dims: [1], data: BigInt64Array.from([0n]) },
      { name: 'ends', dims: [1], data: BigInt64Array.from([1n]) },
      { name: 'axes', dims: [1], data: BigInt64Array.from([1n]) },
      { name: 'c', dims: [1], data: Float32Array.from([c]) },
    ],
    nodes: [
      { op: 'Slice', inputs: ['input', 'starts', 'ends', 'axes'], outputs: ['first'] },
      { op: 'Add', inputs: ['first', 'c'], outputs: ['shifted'] },
      { op: 'Log', inputs: ['shifted'], outputs: ['output'] },
    ],
  });
}

describe('staged rollouts with real agents', () => {
  let dir: string;
  let hub: HubProc;
  let api: ReturnType<typeof hubApi>;
  const agents: AgentProc[] = [];
  let traffic = true;
  let trafficLoop: Promise<void> | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-rollouts-'));
    hub = await spawnHub({ dataDir: join(dir, 'hub') });
    api = hubApi(hub.url, hub.adminToken);
    const token = (
      await api<{ token: string }>('POST', '/enrollment-tokens', { uses: FLEET, tags: ['fleet'] })
    ).token;
    const started = await Promise.all(
      Array.from({ length: FLEET }, (_, i) =>
        spawnAgent([
          '--hub',
          hub.url,
          '--enroll-token',
          token,
          '--data',
          join(dir, `agent-${i}`),
          '--name',
          `dev-${String(i).padStart(2, '0')}`,
          '--telemetry-interval',
          '1',
        ]),
      ),
    );
    agents.push(...started);
    await waitFor(
      async () =>
        (await api<{ devices: { status: string }[] }>('GET', '/devices')).devices.filter(
          (d) => d.status === 'online',
        ).length === FLEET,
      'fleet online',
      120_000,
    );
    // Live traffic: every agent gets uniform(−1, 1) inputs a few times a second.
    trafficLoop = (async () => {
      while (traffic) {
        await Promise.all(
          agents.map((a) =>
            fetch(`${a.inferenceUrl}/models/m/infer`, {
              method: 'POST',
              body: JSON.stringify({
                inputs: [
                  {
                    name: 'input',
                    shape: [1, 16],
                    datatype: 'FP32',
                    data: Array.from({ length: 16 }, () => Math.random() * 2 - 1),
                  },
                ],
              }),
            }).then(
              (r) => r.arrayBuffer(),
              () => undefined,
            ),
          ),
        );
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
  }, 180_000);

  afterEach((context) => {
    if (context.task.result?.state === 'fail') {
      console.log(
        `hub log (errors and warnings):\n${hub.output
          .filter((l) => /"level":(40|50|60)/.test(l))
          .slice(-40)
          .join('\n')}`,
      );
      const agentLines = agents.flatMap((a) =>
        a.output.filter((l) => /"level":(40|50|60)|shadow/.test(l)).slice(-5),
      );
      console.log(`agent logs (errors, warnings, shadow):\n${agentLines.slice(-40).join('\n')}`);
    }
  });

  afterAll(async () => {
    traffic = false;
    await trafficLoop;
    await Promise.all(agents.map((a) => a.kill()));
    await hub?.kill();
    await rm(dir, { recursive: true, force: true });
  });

  const rollout = (id: string) => api<RolloutView>('GET', `/rollouts/${id}`);
  const activeVersions = async () => {
    const { devices } = await api<{
      devices: { reported: { models: Record<string, { active: { version: string } | null }> } | null }[];
    }>('GET', '/devices');
    return devices.map((d) => d.reported?.models.m?.active?.version ?? null);
  };

  it('rolls a good model through 1 → 10% → 50% → 100% of the fleet, batch after batch', async () => {
    await api(
      'PUT',
      '/models/m/versions/1.0.0',
      mlpModel({ inputs: 16, hidden: [32], outputs: 4, seed: 10 }),
    );
    const { id } = await api<{ id: string }>('POST', '/rollouts', {
      model: 'm',
      version: '1.0.0',
      target: { tags: ['fleet'] },
      batches: ['1', '10%', '50%', '100%'],
    });
    await waitFor(async () => (await rollout(id)).state === 'completed', 'rollout completed', 120_000);
    const view = await rollout(id);
    expect(view.counts).toEqual({ active: FLEET });
    const sizes = [0, 1, 2, 3].map((b) => view.devices.filter((d) => d.batch === b).length);
    expect(sizes).toEqual([1, 1, 8, 10]);
    for (let b = 1; b < 4; b++) {
      const previousDone = Math.max(
        ...view.devices.filter((d) => d.batch === b - 1).map((d) => Date.parse(d.activeAt ?? '')),
      );
      const started = Math.min(
        ...view.devices.filter((d) => d.batch === b).map((d) => Date.parse(d.assignedAt ?? '')),
      );
      expect(started).toBeGreaterThanOrEqual(previousDone);
    }
    expect(await activeVersions()).toEqual(Array(FLEET).fill('1.0.0'));
  }, 180_000);

  it('shadows a candidate on the canary before switching, and promotes it when it agrees', async () => {
    await api(
      'PUT',
      '/models/m/versions/1.0.1',
      mlpModel({ inputs: 16, hidden: [32], outputs: 4, seed: 10 }),
    );
    const { id } = await api<{ id: string }>('POST', '/rollouts', {
      model: 'm',
      version: '1.0.1',
      target: { tags: ['fleet'] },
      batches: ['1', '100%'],
      shadowSeconds: 8,
      gates: { minShadowAgreementPct: 90 },
    });
    await waitFor(
      async () => (await rollout(id)).state === 'completed',
      'rollout completed after shadowing',
      120_000,
      500,
    );
    const events = await api<{ events: { kind: string; message: string }[] }>('GET', `/rollouts/${id}`).then(
      (r) => (r as unknown as { events: { kind: string; message: string }[] }).events,
    );
    const finished = events.find((e) => e.kind === 'rollout.shadow-finished');
    expect(finished?.message).toMatch(/^100\.0% agreement over \d+ requests/);
    expect(await activeVersions()).toEqual(Array(FLEET).fill('1.0.1'));
  }, 180_000);

  it('stops a candidate that disagrees with the active model in shadow mode, before any device switches', async () => {
    await api(
      'PUT',
      '/models/m/versions/1.0.2',
      mlpModel({ inputs: 16, hidden: [32], outputs: 4, seed: 10, negate: true }),
    );
    const { id } = await api<{ id: string }>('POST', '/rollouts', {
      model: 'm',
      version: '1.0.2',
      target: { tags: ['fleet'] },
      batches: ['1', '100%'],
      shadowSeconds: 60,
      gates: { minShadowAgreementPct: 90 },
    });
    await waitFor(async () => (await rollout(id)).state === 'paused', 'shadow gate tripped', 120_000, 500);
    expect((await rollout(id)).stateReason).toMatch(/shadow-agreement/);
    expect(await activeVersions()).toEqual(Array(FLEET).fill('1.0.1'));
    // The candidate no longer shadows anywhere.
    const { devices } = await api<{
      devices: { desired: { models: Record<string, { shadow?: unknown }> } | null }[];
    }>('GET', '/devices');
    expect(devices.every((d) => d.desired?.models.m?.shadow === undefined)).toBe(true);
  }, 180_000);

  it('stops a model that crashes on load in the first batch; the canary keeps its model', async () => {
    // A signed bundle whose artifact is not a model at all: it passes upload checks and fails on the device.
    const key = await generateSigningKey();
    await api('POST', '/keys', { name: 'release', publicKey: key.publicKey });
    const junk = new TextEncoder().encode('this is not an ONNX model');
    const ref = await describeFile('cpu/model.onnx', junk);
    const manifest: BundleManifestInput = {
      format: 'edgefleet-bundle',
      formatVersion: 1,
      name: 'm',
      version: '1.1.0',
      createdAt: new Date().toISOString(),
      source: { format: 'onnx', sha256: ref.sha256, size_bytes: ref.size_bytes },
      inputs: [{ name: 'input', shape: [1, 16], dtype: 'float32' }],
      outputs: [{ name: 'output', shape: [1, 4], dtype: 'float32' }],
      artifacts: [{ ...ref, target: 'cpu', runtime: 'onnxruntime', precision: 'fp32' }],
    };
    const packed = await packBundle(manifest, new Map([['cpu/model.onnx', junk]]), key);
    await api('PUT', '/models/m/versions/1.1.0', packed.bytes);
    const { id } = await api<{ id: string }>('POST', '/rollouts', {
      model: 'm',
      version: '1.1.0',
      target: { tags: ['fleet'] },
      batches: ['1', '100%'],
      onFailure: 'rollback',
    });
    await waitFor(async () => (await rollout(id)).state === 'rolled-back', 'rollout stopped', 60_000);
    await waitFor(
      async () => (await rollout(id)).counts.cancelled === FLEET - 1,
      'the pending devices cancelled',
      30_000,
    );
    const view = await rollout(id);
    expect(view.counts).toEqual({ 'rolled-back': 1, cancelled: FLEET - 1 });
    expect(view.stateReason).toMatch(/failed/);
    const events = await api<{ events: { kind: string; message: string }[] }>(
      'GET',
      `/devices/${view.devices.find((d) => d.batch === 0)?.deviceId}/events`,
    );
    const lines = events.events.map((e) => `${e.kind}: ${e.message}`);
    expect(
      lines.some((l) => /rollout\.device-failed: MODEL_LOAD_FAILED/.test(l)),
      JSON.stringify(lines),
    ).toBe(true);
    expect(await activeVersions()).toEqual(Array(FLEET).fill('1.0.1'));
  }, 120_000);

  it('stops a 3× slower model by its latency gate and rolls the fleet back', async () => {
    await api(
      'PUT',
      '/models/m/versions/1.2.0',
      mlpModel({ inputs: 16, hidden: [1024, 1024, 1024], outputs: 4, seed: 11 }),
    );
    const { id } = await api<{ id: string }>('POST', '/rollouts', {
      model: 'm',
      version: '1.2.0',
      target: { tags: ['fleet'] },
      batches: ['50%', '100%'],
      soakSeconds: 60,
      gates: { latencyP95Ratio: 2 },
      onFailure: 'rollback',
    });
    await waitFor(
      async () => (await rollout(id)).state === 'rolled-back',
      'latency gate tripped',
      120_000,
      500,
    );
    // The rollout turns rolled-back first, then its devices one by one.
    await waitFor(
      async () => (await rollout(id)).counts['rolled-back'] === FLEET / 2,
      'the first batch rolled back',
      30_000,
    ).catch(async (error: Error) => {
      throw new Error(`${error.message}: ${JSON.stringify((await rollout(id)).counts)}`);
    });
    const view = await rollout(id);
    expect(view.stateReason, JSON.stringify(view.gates)).toMatch(/latency-p95/);
    await waitFor(
      async () => (await activeVersions()).every((v) => v === '1.0.1'),
      'fleet back on 1.0.1',
      60_000,
    );
  }, 180_000);

  it('stops a model whose error rate doubles by its error-rate gate', async () => {
    await api('PUT', '/models/m/versions/1.3.0', logModel(0.8)); // ~10% NaN outputs
    const base = await api<{ id: string }>('POST', '/rollouts', {
      model: 'm',
      version: '1.3.0',
      target: { tags: ['fleet'] },
    });
    await waitFor(
      async () => (await rollout(base.id)).state === 'completed',
      'baseline model everywhere',
      60_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 10_000)); // let the baseline accumulate traffic
    await api('PUT', '/models/m/versions/1.4.0', logModel(0.6)); // ~20% NaN outputs
    const { id } = await api<{ id: string }>('POST', '/rollouts', {
      model: 'm',
      version: '1.4.0',
      target: { tags: ['fleet'] },
      batches: ['50%', '100%'],
      soakSeconds: 60,
      gates: { errorRateRatio: 1.5 },
      onFailure: 'rollback',
    });
    await waitFor(
      async () => (await rollout(id)).state === 'rolled-back',
      'error-rate gate tripped',
      120_000,
      500,
    );
    expect((await rollout(id)).stateReason).toMatch(/error-rate/);
    await waitFor(
      async () => (await activeVersions()).every((v) => v === '1.3.0'),
      'fleet back on 1.3.0',
      60_000,
    ).catch(async (error: Error) => {
      throw new Error(
        `${error.message}: ${JSON.stringify(await activeVersions())} ${JSON.stringify((await rollout(id)).devices.map((d) => d.state))}`,
      );
    });
  }, 180_000);

  it('completes for the devices that answer and reports the offline ones', async () => {
    const offline = agents.slice(0, 3);
    await Promise.all(offline.map((a) => a.kill('SIGKILL')));
    await waitFor(
      async () =>
        (await api<{ devices: { status: string }[] }>('GET', '/devices')).devices.filter(
          (d) => d.status === 'offline',
        ).length === 3,
      'three devices offline',
      90_000,
    );
    await api(
      'PUT',
      '/models/m/versions/1.5.0',
      mlpModel({ inputs: 16, hidden: [32], outputs: 4, seed: 12 }),
    );
    const { id } = await api<{ id: string }>('POST', '/rollouts', {
      model: 'm',
      version: '1.5.0',
      target: { tags: ['fleet'] },
      deviceTimeoutSeconds: 15,
      maxFailures: '20%',
      successThresholdPct: 80,
    });
    await waitFor(
      async () => (await rollout(id)).state === 'completed',
      'rollout completed around the offline devices',
      120_000,
      500,
    );
    const view = await rollout(id);
    expect(view.counts).toEqual({ active: FLEET - 3, 'timed-out': 3 });
  }, 180_000);
});
