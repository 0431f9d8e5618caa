/**
 * Artifacts over MQTT: every chunk the hub sends carries the bytes at the offset it names, even
 * while the device's announcements move the stream back and forth (as after a reconnect, when the
 * device's client replays the progress reports it queued while cut off).
 */
import { mlpModel } from '@edgefleet/converters';
import { decodeChunk, encodeMessage, type ReportedState, topics } from '@edgefleet/protocol';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/services.ts';
import { enrollDevice, startTestHub, type TestHub } from './helpers.ts';

describe('artifact chunks over MQTT', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('labels every chunk with the offset of its bytes while resends move the stream', async () => {
    const model = mlpModel({ inputs: 16, hidden: [600, 600], outputs: 4, seed: 5 }); // ~1.5 MB
    const published = await t.api<{ files: { file: string; sha256: string }[] }>(
      'PUT',
      '/api/v1/models/chunky/versions/1.0.0',
      model,
    );
    expect(published.status).toBe(201);
    const sha = published.body.files.find((f) => f.file === 'cpu/model.onnx')?.sha256 as string;
    const artifact = new Uint8Array(
      await (
        await fetch(`${t.hub.url}/api/v1/artifacts/${sha}`, {
          headers: { authorization: `Bearer ${t.adminToken}` },
        })
      ).arrayBuffer(),
    );
    const d = await enrollDevice(t, 'chunky-dev', ['chunky']);
    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${t.hub.mqttPort}`, {
      clientId: d.deviceId,
      username: d.deviceId,
      password: d.secret,
      reconnectPeriod: 0,
    });
    const chunks: { offset: number; data: Uint8Array }[] = [];
    client.on('message', (topic, payload) => {
      if (!topic.endsWith(`/chunks/${sha}`)) return;
      const chunk = decodeChunk(payload);
      if (chunk) chunks.push({ offset: chunk.offset, data: new Uint8Array(chunk.data) });
    });
    await client.subscribeAsync(topics.chunks(d.deviceId, '+'), { qos: 1 });
    const rollout = await t.api('POST', '/api/v1/rollouts', {
      model: 'chunky',
      version: '1.0.0',
      target: { tags: ['chunky'] },
    });
    expect(rollout.status).toBe(201);

    const report = (offset: number): Promise<unknown> => {
      const reported: ReportedState = {
        desiredRevision: null,
        ts: new Date().toISOString(),
        agentVersion: '0.1.0',
        profile: null,
        runtimes: [],
        models: {},
        transfers: [{ sha256: sha, offset, size: artifact.byteLength }],
      };
      return client.publishAsync(topics.reported(d.deviceId), encodeMessage(reported), { qos: 1 });
    };
    await report(0);
    await waitFor(async () => chunks.length > 0, 'the first chunk');
    // A burst of stale and fresh offsets, each one making the hub resend from there.
    const step = 64 * 1024;
    for (let round = 0; round < 3; round++)
      for (let offset = 0; offset < artifact.byteLength; offset += step) void report(offset);
    await report(artifact.byteLength - 1);
    await waitFor(
      async () => chunks.some((c) => c.offset + c.data.byteLength === artifact.byteLength),
      'the last chunk',
    );

    const wrong = chunks.filter(
      (c) =>
        Buffer.compare(
          Buffer.from(c.data),
          Buffer.from(artifact.subarray(c.offset, c.offset + c.data.byteLength)),
        ) !== 0,
    );
    expect(chunks.length).toBeGreaterThan(1);
    expect(wrong.map((c) => c.offset)).toEqual([]);
    await client.endAsync();
  });
});
