/** The staged-rollout engine against a real hub store, with devices' reports fed in as the broker would. */
import {
  type DesiredState,
  desiredState,
  parseMessage,
  type ReportedState,
  type TelemetrySample,
  topics,
} from '@edgefleet/protocol';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/services.ts';
import { publishDesired } from '../src/rollouts/desired.ts';
import {
  actOnRollout,
  advance,
  onDeviceReported,
  startRollout,
  tickRollouts,
} from '../src/rollouts/engine.ts';
import { enrollDevice, fakeBundle, startTestHub, type TestHub } from './helpers.ts';

let t: TestHub;
let counter = 0;

beforeAll(async () => {
  t = await startTestHub();
});
afterAll(async () => {
  await t?.stop();
});

async function publish(model: string, version: string, seed: number) {
  const { key, packed, artifactSha256 } = await fakeBundle(
    model,
    version,
    undefined,
    new Uint8Array([seed, 1, 2, 3]),
  );
  await t.api('POST', '/api/v1/keys', { name: `k${seed}`, publicKey: key.publicKey });
  const r = await t.api('PUT', `/api/v1/models/${model}/versions/${version}`, packed.bytes);
  expect(r.status).toBe(201);
  return artifactSha256;
}

async function fleet(n: number, tags: string[] = []) {
  const tag = `fleet${++counter}`;
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await enrollDevice(t, `${tag}-${i}`, [tag, ...tags])).deviceId);
  return { tag, ids };
}

async function report(
  deviceId: string,
  model: string,
  version: string,
  sha: string,
  state: 'active' | 'failed' | 'downloading',
  deploymentId: string,
  previous?: { version: string; sha: string },
) {
  const now = new Date().toISOString();
  const running = state === 'active' ? { version, sha } : previous;
  const reported: ReportedState = {
    desiredRevision: null,
    ts: now,
    agentVersion: '0.1.0',
    profile: null,
    runtimes: [],
    transfers: [],
    models: {
      [model]: {
        active: running
          ? {
              name: model,
              version: running.version,
              sha256: running.sha,
              target: 'cpu',
              runtime: 'onnxruntime',
              since: now,
            }
          : null,
        previous: null,
        deployment: {
          deploymentId,
          name: model,
          version,
          state,
          updatedAt: now,
          ...(state === 'failed' ? { error: { code: 'MODEL_LOAD_FAILED', message: 'boom' } } : {}),
        },
      },
    },
  };
  await t.hub.ctx.store.devices.setReported(deviceId, reported);
  await onDeviceReported(t.hub.ctx, deviceId, reported);
}

const rollout = async (id: string) =>
  (
    await t.api<{
      state: string;
      stateReason: string;
      currentBatch: number;
      counts: Record<string, number>;
      devices: { deviceId: string; state: string; batch: number }[];
      gates: { readings: { gate: string; status: string }[] };
    }>('GET', `/api/v1/rollouts/${id}`)
  ).body;

function sample(seq: number, ts: Date, requests: number, errors: number, p95: number): TelemetrySample {
  return {
    seq,
    ts: ts.toISOString(),
    cpu_load_pct: 10,
    mem_used_mb: 1,
    mem_total_mb: 2,
    rss_mb: 1,
    disk_free_mb: 1,
    disk_total_mb: 2,
    temp_c: null,
    uptime_s: seq,
    inference: { requests, errors, latency_p50_ms: p95 / 2, latency_p95_ms: p95 },
  };
}

describe('staged rollouts', () => {
  it('goes 1 → 50% → 100%, one batch after another, and completes', async () => {
    const sha = await publish('staged', '1.0.0', 1);
    const { tag, ids } = await fleet(4);
    const r = await startRollout(t.hub.ctx, {
      model: 'staged',
      version: '1.0.0',
      selector: { tags: [tag] },
      plan: { batches: ['1', '50%', '100%'] },
      actor: 'test',
    });
    let view = await rollout(r.id);
    expect(view.devices.map((d) => d.batch)).toEqual([0, 1, 2, 2]);
    expect(view.counts).toEqual({ assigned: 1, pending: 3 });
    const byBatch = (b: number) => view.devices.filter((d) => d.batch === b).map((d) => d.deviceId);
    for (const id of byBatch(0)) await report(id, 'staged', '1.0.0', sha, 'active', r.id);
    view = await rollout(r.id);
    expect(view.currentBatch).toBe(1);
    expect(view.counts).toEqual({ active: 1, assigned: 1, pending: 2 });
    for (const id of byBatch(1)) await report(id, 'staged', '1.0.0', sha, 'active', r.id);
    for (const id of byBatch(2)) await report(id, 'staged', '1.0.0', sha, 'active', r.id);
    view = await rollout(r.id);
    expect(view.state).toBe('completed');
    expect(view.counts).toEqual({ active: 4 });
    expect(ids).toHaveLength(4);
  });

  it('stops in the first batch when the canary fails and returns it to its last good version', async () => {
    const good = await publish('canary', '1.0.0', 2);
    const bad = await publish('canary', '2.0.0', 3);
    const { tag, ids } = await fleet(3);
    const v1 = await startRollout(t.hub.ctx, {
      model: 'canary',
      version: '1.0.0',
      selector: { tags: [tag] },
      actor: 'test',
    });
    for (const id of ids) await report(id, 'canary', '1.0.0', good, 'active', v1.id);
    expect((await rollout(v1.id)).state).toBe('completed');

    const v2 = await startRollout(t.hub.ctx, {
      model: 'canary',
      version: '2.0.0',
      selector: { tags: [tag] },
      plan: { batches: ['1', '100%'], onFailure: 'rollback' },
      actor: 'test',
    });
    const canary = (await rollout(v2.id)).devices.find((d) => d.batch === 0)?.deviceId as string;
    expect((await t.hub.ctx.store.devices.get(canary))?.desired?.models.canary?.version).toBe('2.0.0');
    await report(canary, 'canary', '2.0.0', bad, 'failed', v2.id, { version: '1.0.0', sha: good });
    const view = await rollout(v2.id);
    expect(view.state).toBe('rolled-back');
    expect(view.counts).toEqual({ 'rolled-back': 1, cancelled: 2 });
    const desired = (await t.hub.ctx.store.devices.get(canary))?.desired?.models.canary;
    expect(desired).toMatchObject({ version: '1.0.0', rollback: true, artifact: { sha256: good } });
    const others = ids.filter((id) => id !== canary);
    for (const id of others)
      expect((await t.hub.ctx.store.devices.get(id))?.desired?.models.canary?.version).toBe('1.0.0');
  });

  it('rolls the fleet back when the new version is 3× slower than the old on the same devices', async () => {
    const good = await publish('slow', '1.0.0', 4);
    const slow = await publish('slow', '2.0.0', 5);
    const { tag, ids } = await fleet(2);
    const v1 = await startRollout(t.hub.ctx, {
      model: 'slow',
      version: '1.0.0',
      selector: { tags: [tag] },
      actor: 'test',
    });
    for (const id of ids) await report(id, 'slow', '1.0.0', good, 'active', v1.id);
    // Traffic before the update: 10 ms p95.
    const before = new Date(Date.now() - 60_000);
    for (const [i, id] of ids.entries())
      await t.hub.ctx.store.devices.insertTelemetry([
        { deviceId: id, sample: sample(100 + i, before, 100, 0, 10) },
      ]);
    const v2 = await startRollout(t.hub.ctx, {
      model: 'slow',
      version: '2.0.0',
      selector: { tags: [tag] },
      plan: {
        batches: ['50%', '100%'],
        soakSeconds: 300,
        onFailure: 'rollback',
        gates: { latencyP95Ratio: 2 },
      },
      actor: 'test',
    });
    const canary = (await rollout(v2.id)).devices.find((d) => d.batch === 0)?.deviceId as string;
    await report(canary, 'slow', '2.0.0', slow, 'active', v2.id, { version: '1.0.0', sha: good });
    expect((await rollout(v2.id)).state).toBe('running'); // soaking, no traffic yet
    await t.hub.ctx.store.devices.insertTelemetry([
      { deviceId: canary, sample: sample(200, new Date(Date.now() + 1000), 100, 0, 31) },
    ]);
    await advance(t.hub.ctx, v2.id, new Date(Date.now() + 5000));
    const view = await rollout(v2.id);
    expect(view.state).toBe('rolled-back');
    expect(view.stateReason).toMatch(/latency-p95/);
    expect(view.gates.readings.find((g) => g.gate === 'latency-p95')?.status).toBe('fail');
    expect((await t.hub.ctx.store.devices.get(canary))?.desired?.models.slow?.version).toBe('1.0.0');
  });

  it('stops a version whose error rate doubles', async () => {
    const good = await publish('errs', '1.0.0', 6);
    const worse = await publish('errs', '1.1.0', 7);
    const { tag, ids } = await fleet(1);
    const id = ids[0] as string;
    const v1 = await startRollout(t.hub.ctx, {
      model: 'errs',
      version: '1.0.0',
      selector: { tags: [tag] },
      actor: 'test',
    });
    await report(id, 'errs', '1.0.0', good, 'active', v1.id);
    await t.hub.ctx.store.devices.insertTelemetry([
      { deviceId: id, sample: sample(300, new Date(Date.now() - 30_000), 1000, 50, 5) },
    ]);
    const v2 = await startRollout(t.hub.ctx, {
      model: 'errs',
      version: '1.1.0',
      selector: { tags: [tag] },
      plan: { soakSeconds: 60, gates: { errorRateRatio: 1.5 } },
      actor: 'test',
    });
    await report(id, 'errs', '1.1.0', worse, 'active', v2.id, { version: '1.0.0', sha: good });
    await t.hub.ctx.store.devices.insertTelemetry([
      { deviceId: id, sample: sample(301, new Date(Date.now() + 1000), 1000, 100, 5) },
    ]);
    await advance(t.hub.ctx, v2.id, new Date(Date.now() + 2000));
    const view = await rollout(v2.id);
    expect(view.state).toBe('paused');
    expect(view.stateReason).toMatch(/error-rate/);
  });

  it('completes for the devices that answer and reports the silent ones as timed out', async () => {
    const sha = await publish('offline', '1.0.0', 8);
    const { tag, ids } = await fleet(3);
    const r = await startRollout(t.hub.ctx, {
      model: 'offline',
      version: '1.0.0',
      selector: { tags: [tag] },
      plan: { deviceTimeoutSeconds: 60, maxFailures: '1', successThresholdPct: 50 },
      actor: 'test',
    });
    await report(ids[0] as string, 'offline', '1.0.0', sha, 'active', r.id);
    await report(ids[1] as string, 'offline', '1.0.0', sha, 'active', r.id);
    await tickRollouts(t.hub.ctx, new Date(Date.now() + 120_000));
    const view = await rollout(r.id);
    expect(view.state).toBe('completed');
    expect(view.counts).toEqual({ active: 2, 'timed-out': 1 });
  });

  it('sends the desired state again to a device marked assigned that was never told', async () => {
    await publish('resend', '1.0.0', 11);
    const tag = `fleet${++counter}`;
    const device = await enrollDevice(t, `${tag}-0`, [tag]);
    const r = await startRollout(t.hub.ctx, {
      model: 'resend',
      version: '1.0.0',
      selector: { tags: [tag] },
      actor: 'test',
    });
    // A replica killed between its two steps: the device is "assigned", its desired state is not.
    const unsent = await t.hub.ctx.store.devices.writeDesired(device.deviceId, (current, revision) => ({
      ...(current as DesiredState),
      revision,
      models: {},
    }));
    await publishDesired(t.hub.ctx, device.deviceId, unsent as DesiredState);

    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${t.hub.mqttPort}`, {
      clientId: device.deviceId,
      username: device.deviceId,
      password: device.secret,
      reconnectPeriod: 0,
    });
    const received: DesiredState[] = [];
    client.on('message', (_topic, payload) => received.push(parseMessage(desiredState, payload, 'desired')));
    await client.subscribeAsync(topics.desired(device.deviceId), { qos: 1 });
    try {
      await waitFor(async () => received.length === 1, 'the retained desired state');
      expect(received[0]?.models.resend).toBeUndefined();
      const assignedAt = Date.now();
      await tickRollouts(t.hub.ctx, new Date(assignedAt + 10_000));
      await tickRollouts(t.hub.ctx, new Date(assignedAt + 40_000));
      await waitFor(async () => received.length === 2, 'the desired state sent again');
      expect(received[1]?.models.resend?.deploymentId).toBe(r.id);
      expect((await rollout(r.id)).counts).toEqual({ assigned: 1 });

      // Once the device mentions the deployment, it is left alone.
      await report(device.deviceId, 'resend', '1.0.0', 'a'.repeat(64), 'downloading', r.id);
      await tickRollouts(t.hub.ctx, new Date(assignedAt + 120_000));
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(received).toHaveLength(2);
    } finally {
      await client.endAsync();
    }
  });

  it('respects the rate limit and the per-site disruption budget', async () => {
    await publish('paced', '1.0.0', 9);
    const { tag } = await fleet(4, ['site:berlin']);
    const r = await startRollout(t.hub.ctx, {
      model: 'paced',
      version: '1.0.0',
      selector: { tags: [tag] },
      plan: { maxConcurrentPerSite: 2 },
      actor: 'test',
    });
    expect((await rollout(r.id)).counts).toEqual({ assigned: 2, pending: 2 });
    await publish('paced2', '1.0.0', 10);
    const { tag: tag2 } = await fleet(5);
    const r2 = await startRollout(t.hub.ctx, {
      model: 'paced2',
      version: '1.0.0',
      selector: { tags: [tag2] },
      plan: { maxPerMinute: 3 },
      actor: 'test',
    });
    expect((await rollout(r2.id)).counts).toEqual({ assigned: 3, pending: 2 });
    await advance(t.hub.ctx, r2.id, new Date(Date.now() + 61_000));
    expect((await rollout(r2.id)).counts).toEqual({ assigned: 5 });
  });

  it('waits for approval between batches and records who approved', async () => {
    const sha = await publish('gated', '1.0.0', 11);
    const { tag } = await fleet(2);
    const r = await startRollout(t.hub.ctx, {
      model: 'gated',
      version: '1.0.0',
      selector: { tags: [tag] },
      plan: { batches: ['1', '100%'], requireApproval: true },
      actor: 'test',
    });
    const first = (await rollout(r.id)).devices.find((d) => d.batch === 0)?.deviceId as string;
    await report(first, 'gated', '1.0.0', sha, 'active', r.id);
    expect((await rollout(r.id)).state).toBe('awaiting-approval');
    const approved = await t.api<{ state: string; counts: Record<string, number> }>(
      'POST',
      `/api/v1/rollouts/${r.id}/approve`,
      { reason: 'canary looks fine' },
    );
    expect(approved.body.state).toBe('running');
    expect(approved.body.counts).toEqual({ active: 1, assigned: 1 });
    const events = await t.hub.ctx.store.events.list({ subject: r.id });
    expect(events.find((e) => e.kind === 'rollout.approved')).toMatchObject({
      actor: expect.stringContaining('token:'),
      message: expect.stringContaining('canary looks fine'),
    });
  });

  it('lets a newer rollout supersede an older one', async () => {
    await publish('sup', '1.0.0', 12);
    await publish('sup', '1.1.0', 13);
    const { tag } = await fleet(2);
    const old = await startRollout(t.hub.ctx, {
      model: 'sup',
      version: '1.0.0',
      selector: { tags: [tag] },
      actor: 'test',
    });
    await startRollout(t.hub.ctx, {
      model: 'sup',
      version: '1.1.0',
      selector: { tags: [tag] },
      actor: 'test',
    });
    expect((await rollout(old.id)).state).toBe('superseded');
    await expect(actOnRollout(t.hub.ctx, old.id, 'pause', 'test')).rejects.toThrow(/superseded/);
  });
});
