/**
 * The whole agent in-process, against an aedes broker and an HTTP stand-in for the hub: enrollment
 * and credentials, status with a Last Will, the retained desired state followed to a served
 * model, commands, telemetry through the outbox across a broker outage (each sample once, in
 * order), bad payloads ignored, and a restart with no hub or broker that still serves the model.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, publicKeyOf, type SigningKeyFile } from '@edgefleet/bundle';
import {
  commandReply,
  encodeMessage,
  parseMessage,
  reportedState,
  statusMessage,
  type TelemetrySample,
  telemetryMessage,
  topics,
} from '@edgefleet/protocol';
import * as ort from 'onnxruntime-node';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/services.ts';
import { type RunningAgent, startAgent } from '../src/index.ts';
import { startTestBroker, type TestBroker } from './broker.ts';
import {
  type ArtifactServer,
  desiredFor,
  desiredState,
  makeBundle,
  startArtifactServer,
  type TestBundle,
} from './fixtures.ts';

const DEVICE = 'dev-agent-test';
let key: SigningKeyFile;
let server: ArtifactServer;
let broker: TestBroker;
let bundle: TestBundle;
let dir: string;
let agent: RunningAgent | undefined;
const logs: { msg: string; [k: string]: unknown }[] = [];
const logger = pino(
  { level: 'info' },
  {
    write(line: string) {
      logs.push(JSON.parse(line));
    },
  },
);

const fromDevice = (kind: string) =>
  broker.received.filter((m) => m.clientId === DEVICE && m.topic.endsWith(`/${kind}`));
const statuses = () =>
  fromDevice('status').map((m) => parseMessage(statusMessage, m.payload, 'status').state);
const samples = (): TelemetrySample[] =>
  fromDevice('telemetry').flatMap((m) => parseMessage(telemetryMessage, m.payload, 'telemetry').samples);
const lastReported = () => {
  const m = fromDevice('reported').at(-1);
  return m ? parseMessage(reportedState, m.payload, 'reported') : undefined;
};
const start = (extra: Parameters<typeof startAgent>[0] | object = {}) =>
  startAgent({
    dataDir: dir,
    port: 0,
    logger,
    telemetryIntervalMs: 3_600_000, // samples are taken by the tests
    ...extra,
  });
const infer = async (port: number) => {
  const r = await fetch(`http://127.0.0.1:${port}/v2/models/m/infer`, {
    method: 'POST',
    body: JSON.stringify({
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }],
    }),
  });
  return { status: r.status, body: (await r.json()) as { outputs: { data: number[] }[] } };
};

beforeAll(async () => {
  key = await generateSigningKey();
  [server, broker] = await Promise.all([startArtifactServer(), startTestBroker()]);
  bundle = await makeBundle(key, { version: '1.0.0', seed: 5 });
  server.add(bundle);
  broker.devices.set(DEVICE, server.secret);
  server.enrollment = {
    token: 'efe_test_token_1',
    deviceId: DEVICE,
    mqttUrl: broker.url,
    trustedKeys: [publicKeyOf(key)],
  };
  dir = join(await mkdtemp(join(tmpdir(), 'ef-agent-')), 'data');
});
afterAll(async () => {
  await agent?.stop();
  await Promise.all([server?.close(), broker?.stop()]);
  await rm(join(dir, '..'), { recursive: true, force: true });
});

describe('agent', () => {
  it('refuses to start without credentials or an enrollment token, saying how to enroll', async () => {
    await expect(start()).rejects.toMatchObject({
      code: 'NOT_ENROLLED',
      message: expect.stringContaining('--enroll-token'),
    });
  });

  it('reports a refused enrollment token and writes no credentials', async () => {
    await expect(start({ hub: server.url, enrollToken: 'efe_wrong_token' })).rejects.toMatchObject({
      code: 'HUB_REFUSED',
      message: expect.stringContaining('401'),
    });
    await expect(stat(join(dir, 'credentials.json'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('enrolls once, keeps its credentials private, and connects as itself with a retained online status', async () => {
    agent = await start({ hub: `${server.url}/`, enrollToken: 'efe_test_token_1', name: 'bench-pi' });
    expect(agent.deviceId).toBe(DEVICE);
    expect(server.enrollRequests.at(-1)).toMatchObject({
      name: 'bench-pi',
      profile: `linux-${process.arch}`,
      facts: { arch: process.arch, platform: 'linux' },
    });
    expect((await stat(join(dir, 'credentials.json'))).mode & 0o777).toBe(0o600);
    await waitFor(() => statuses().includes('online'), 'online status');
    const online = fromDevice('status').at(-1);
    expect(online?.retain).toBe(true);
    expect(broker.connects.at(-1)).toMatchObject({ clientId: DEVICE, username: DEVICE });
    const msgs = logs.map((l) => l.msg);
    expect(msgs).toEqual(expect.arrayContaining(['enrolled', 'agent ready', 'connected']));
  });

  it('reports its state and runtimes once connected', async () => {
    await waitFor(() => lastReported() !== undefined, 'reported state');
    const reported = lastReported();
    expect(reported?.runtimes).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'onnxruntime-cpu', available: true })]),
    );
    expect(fromDevice('reported').at(-1)?.retain).toBe(true);
  });

  it('publishes telemetry samples with strictly increasing sequence numbers', async () => {
    await agent?.sampleTelemetry();
    await agent?.sampleTelemetry();
    await waitFor(() => samples().length >= 3, 'three samples (one at start)');
    const seqs = samples().map((s) => s.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    const sample = samples().at(-1) as TelemetrySample;
    expect(sample.mem_total_mb).toBeGreaterThan(0);
    expect(sample.disk_total_mb).toBeGreaterThan(0);
    expect(sample.rss_mb).toBeGreaterThan(0);
  });

  it('follows the retained desired state to a model it serves locally and reports active', async () => {
    await broker.publish(
      topics.desired(DEVICE),
      encodeMessage(desiredState({ m: desiredFor(bundle, 'dep-1') })),
    );
    await waitFor(() => lastReported()?.models.m?.deployment?.state === 'active', 'reported active', 60_000);
    expect(lastReported()?.models.m?.active).toMatchObject({
      name: 'm',
      version: '1.0.0',
      sha256: bundle.artifact.sha256,
    });
    const answer = await infer(agent?.port as number);
    expect(answer.status).toBe(200);
    const direct = await ort.InferenceSession.create(bundle.files.get(bundle.artifact.file) as Uint8Array);
    const want = await direct.run({
      input: new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4]), [1, 4]),
    });
    await direct.release();
    expect(answer.body.outputs[0]?.data).toEqual(Array.from(want.output?.data as Float32Array));
    expect(logs.some((l) => l.msg === 'model active')).toBe(true);
  });

  it('samples telemetry on the interval the desired state sets', async () => {
    const withInterval = (ms: number) => ({
      ...desiredState({ m: desiredFor(bundle, 'dep-1') }),
      config: { telemetryIntervalMs: ms },
    });
    const before = samples().length;
    await broker.publish(topics.desired(DEVICE), encodeMessage(withInterval(1000)));
    await waitFor(() => samples().length >= before + 2, 'two samples on the 1 s interval', 30_000);
    const calm = withInterval(86_400_000);
    await broker.publish(topics.desired(DEVICE), encodeMessage(calm));
    await waitFor(() => agent?.reconciler.desiredRevision === calm.revision, 'long interval taken');
    await waitFor(async () => (await agent?.outbox.stats())?.pending === 0, 'outbox drained');
  });

  it('answers commands with the ok | error envelope and ignores malformed ones', async () => {
    const replies = () =>
      broker.received
        .filter((m) => m.topic.includes('/cmd/') && m.topic.endsWith('/reply'))
        .map((m) => ({ topic: m.topic, reply: parseMessage(commandReply, m.payload, 'reply') }));
    await broker.publish(topics.cmd(DEVICE, 'ping'), JSON.stringify({ id: 'c1' }), false);
    await broker.publish(topics.cmd(DEVICE, 'ping'), 'this is not json', false);
    await broker.publish(topics.cmd(DEVICE, 'selfdestruct'), JSON.stringify({ id: 'c2' }), false);
    await broker.publish(topics.cmd(DEVICE, 'reconcile'), JSON.stringify({ id: 'c3' }), false);
    await waitFor(() => replies().length >= 3, 'three replies');
    const byId = Object.fromEntries(replies().map((r) => [r.reply.id, r]));
    expect(byId.c1?.topic).toBe(topics.cmdReply(DEVICE, 'ping'));
    expect(byId.c1?.reply).toMatchObject({ ok: true, result: { pong: true } });
    expect(byId.c2?.reply).toMatchObject({ ok: false, error: { code: 'BAD_INPUT' } });
    expect(byId.c3?.reply).toMatchObject({ ok: true, result: { reconciling: true } });
    expect(replies()).toHaveLength(3); // nothing answered the garbage
  });

  it('ignores a malformed desired state and keeps serving', async () => {
    await broker.publish(topics.desired(DEVICE), '{"revision": "lots", "models": 7}');
    await broker.publish(topics.desired(DEVICE), Buffer.from([0xff, 0xfe, 0x00]));
    await broker.publish(topics.cmd(DEVICE, 'ping'), JSON.stringify({ id: 'after-garbage' }), false);
    await waitFor(() => broker.received.some((m) => m.payload.includes('after-garbage')), 'still answering');
    expect((await infer(agent?.port as number)).status).toBe(200);
    expect(logs.filter((l) => l.msg === 'invalid message ignored').length).toBeGreaterThanOrEqual(3);
    // The count reaches the hub in the next telemetry sample.
    await agent?.sampleTelemetry();
    await waitFor(
      () => samples().some((x) => x.notes?.some((n) => n.includes('invalid MQTT messages'))),
      'note',
    );
  });

  it('is marked offline by its Last Will when the connection dies, and comes back online', async () => {
    const before = statuses().length;
    broker.dropClient(DEVICE);
    await waitFor(() => statuses().slice(before).includes('offline'), 'last will published');
    const will = broker.received.filter((m) => m.topic === topics.status(DEVICE)).at(-1);
    expect(will).toMatchObject({ retain: true });
    await waitFor(() => statuses().slice(before).at(-1) === 'online', 'back online', 30_000);
  });

  it('sends again a sample the broker never acknowledged, and then the rest', async () => {
    await waitFor(async () => (await agent?.outbox.stats())?.pending === 0, 'outbox drained');
    const before = new Set(samples().map((s) => s.seq));
    broker.holdAcksFor = '/telemetry';
    await agent?.sampleTelemetry();
    await waitFor(() => samples().length > before.size, 'sample received but not acknowledged');
    await agent?.sampleTelemetry();
    await agent?.sampleTelemetry();
    expect((await agent?.outbox.stats())?.pending).toBe(3); // nothing acknowledged, nothing removed
    broker.holdAcksFor = undefined;
    broker.dropClient(DEVICE);
    await waitFor(
      async () => (await agent?.outbox.stats())?.pending === 0,
      'outbox drained after reconnect',
      60_000,
    );
    const fresh = samples()
      .map((s) => s.seq)
      .filter((seq) => !before.has(seq));
    expect(new Set(fresh).size).toBe(3);
    // Only the unacknowledged message may arrive twice; the hub drops that duplicate by seq.
    expect(fresh.length).toBeLessThanOrEqual(4);
  });

  it('queues telemetry while the broker is down and delivers every sample once, in order', async () => {
    await waitFor(async () => (await agent?.outbox.stats())?.pending === 0, 'outbox drained');
    const sentBefore = samples().length;
    await broker.stop();
    for (let i = 0; i < 6; i++) await agent?.sampleTelemetry();
    expect((await agent?.outbox.stats())?.pending).toBe(6);
    await broker.start();
    await waitFor(
      async () => (await agent?.outbox.stats())?.pending === 0,
      'outbox drained after outage',
      60_000,
    );
    const queued = samples()
      .slice(sentBefore)
      .map((s) => s.seq);
    expect(queued).toHaveLength(6); // each once: no duplicates
    expect(queued).toEqual([...queued].sort((a, b) => a - b)); // in order
    expect(new Set(queued).size).toBe(6);
  });

  it('sends what the outbox holds, then publishes offline, on a clean stop', async () => {
    const before = statuses().length;
    const last = samples().at(-1) as TelemetrySample;
    // Queued without a drain being started, as a sample taken during shutdown would be.
    const late = { ...last, seq: last.seq + 1000, ts: new Date().toISOString() };
    await agent?.outbox.append(topics.telemetry(DEVICE), encodeMessage({ samples: [late] }));
    await agent?.stop();
    agent = undefined;
    expect(samples().at(-1)?.seq).toBe(late.seq);
    expect(statuses().slice(before)).toEqual(['offline']);
  });

  it('restarts from --data alone and serves its model with no hub or broker reachable', async () => {
    const lastSeq = Math.max(
      ...samples()
        .slice(0, -1)
        .map((s) => s.seq),
    ); // all but the hand-made one
    await Promise.all([server.close(), broker.stop()]);
    agent = await start();
    expect(agent.deviceId).toBe(DEVICE);
    const ready = await fetch(`http://127.0.0.1:${agent.port}/v2/health/ready`);
    expect(ready.status).toBe(200);
    const answer = await infer(agent.port);
    expect(answer.status).toBe(200);
    expect(logs.some((l) => l.msg === 'model active (loaded from disk)')).toBe(true);
    // Telemetry keeps numbering where it left off, waiting in the outbox (the first sample is taken
    // in the background so start-up never waits on it).
    const running = agent;
    await waitFor(async () => (await running.outbox.stats()).pending > 0, 'first sample queued');
    const pending = await running.outbox.pending();
    const seqs = pending.flatMap((e) =>
      parseMessage(telemetryMessage, e.payload, 't').samples.map((s) => s.seq),
    );
    expect(seqs.length).toBeGreaterThan(0);
    expect(Math.min(...seqs)).toBeGreaterThan(lastSeq);
  });
});
