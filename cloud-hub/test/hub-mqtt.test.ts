import { encodeMessage, type ReportedState, topics } from '@edgefleet/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.ts';
import { MOSQUITTO_URL, requireService, waitFor } from '../../test/support/services.ts';
import { enrollDevice, fakeBundle, startTestHub, type TestHub } from './helpers.ts';

const postgres = await requireService('postgres');
const mosquitto = await requireService('mosquitto');

async function connectDevice(
  url: string,
  deviceId: string,
  secret: string,
  clientId = deviceId,
): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    clientId,
    username: deviceId,
    password: secret,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  });
}

const sample = (seq: number) => ({
  seq,
  ts: new Date().toISOString(),
  cpu_load_pct: 12.5,
  mem_used_mb: 300,
  mem_total_mb: 4000,
  rss_mb: 60,
  disk_free_mb: 10_000,
  disk_total_mb: 30_000,
  temp_c: 48.2,
  uptime_s: 100 + seq,
});

describe('embedded broker: credentials and topic ACL', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('refuses a wrong secret, another device’s id, and a borrowed client id', async () => {
    const a = await enrollDevice(t, 'acl-a');
    const b = await enrollDevice(t, 'acl-b');
    const url = `mqtt://127.0.0.1:${t.hub.mqttPort}`;
    await expect(connectDevice(url, a.deviceId, 'efd_wrong')).rejects.toThrow();
    await expect(connectDevice(url, b.deviceId, a.secret)).rejects.toThrow();
    await expect(connectDevice(url, a.deviceId, a.secret, b.deviceId)).rejects.toThrow();
    const ok = await connectDevice(url, a.deviceId, a.secret);
    await ok.endAsync();
  });

  it('lets a device use only its own topics', async () => {
    const a = await enrollDevice(t, 'acl-c');
    const b = await enrollDevice(t, 'acl-d');
    const url = `mqtt://127.0.0.1:${t.hub.mqttPort}`;
    const clientA = await connectDevice(url, a.deviceId, a.secret);
    expect((await clientA.subscribeAsync(topics.desired(a.deviceId), { qos: 1 }))[0]?.qos).toBe(1);
    // Refused subscriptions come back as SUBACK 0x80 (mqtt.js rejects), and the connection stays up.
    await expect(clientA.subscribeAsync(topics.desired(b.deviceId), { qos: 1 })).rejects.toThrow(
      /Subscribe error/,
    );
    await expect(clientA.subscribeAsync('edgefleet/v1/#', { qos: 1 })).rejects.toThrow(/Subscribe error/);
    expect(clientA.connected).toBe(true);
    // Publishing as B: aedes drops the connection of a client that publishes where it may not.
    const dropped = new Promise<void>((resolve) => clientA.once('close', () => resolve()));
    clientA.publish(topics.telemetry(b.deviceId), encodeMessage({ samples: [sample(1)] }), { qos: 1 });
    await dropped;
    clientA.end(true);
    expect(await t.hub.ctx.store.devices.telemetryCount(b.deviceId)).toBe(0);
  });
});

const setups = [
  { name: 'embedded broker + SQLite', available: true, external: false, pg: false },
  {
    name: 'Mosquitto + PostgreSQL',
    available: mosquitto.available && postgres.available,
    external: true,
    pg: true,
  },
];

for (const setup of setups) {
  describe.skipIf(!setup.available)(`device traffic through ${setup.name}`, () => {
    let t: TestHub;
    let db: TestDatabase | undefined;
    let brokerUrl: string;
    beforeAll(async () => {
      db = setup.pg ? await createTestDatabase() : undefined;
      t = await startTestHub({
        ...(db ? { db: db.url } : {}),
        ...(setup.external ? { mqttUrl: MOSQUITTO_URL, replicaId: `t${Date.now()}` } : {}),
      });
      brokerUrl = setup.external ? MOSQUITTO_URL : `mqtt://127.0.0.1:${t.hub.mqttPort}`;
    });
    afterAll(async () => {
      await t?.stop();
      await db?.drop();
    });

    it('stores each telemetry sample once and marks the device online', async () => {
      const d = await enrollDevice(t, 'tele');
      const client = await connectDevice(brokerUrl, d.deviceId, d.secret);
      await client.publishAsync(
        topics.status(d.deviceId),
        encodeMessage({ state: 'online', agentVersion: '0.1.0', ts: new Date().toISOString() }),
        { qos: 1, retain: true },
      );
      await client.publishAsync(
        topics.telemetry(d.deviceId),
        encodeMessage({ samples: [sample(1), sample(2)] }),
        { qos: 1 },
      );
      await client.publishAsync(
        topics.telemetry(d.deviceId),
        encodeMessage({ samples: [sample(2), sample(3)] }),
        { qos: 1 },
      );
      await client.publishAsync(topics.telemetry(d.deviceId), 'not json at all', { qos: 1 });
      await waitFor(
        async () => (await t.hub.ctx.store.devices.telemetryCount(d.deviceId)) === 3,
        'three samples stored',
      );
      await waitFor(
        async () => (await t.hub.ctx.store.devices.get(d.deviceId))?.status === 'online',
        'device online',
      );
      const listed = await t.api<{ devices: { id: string; lastTelemetry: { seq: number } | null }[] }>(
        'GET',
        '/api/v1/devices',
      );
      expect(listed.body.devices.find((x) => x.id === d.deviceId)?.lastTelemetry?.seq).toBe(3);
      await client.publishAsync(topics.status(d.deviceId), '', { qos: 1, retain: true });
      await client.endAsync();
    });

    it('stores a QoS 1 burst from several devices exactly once, acknowledging each sample only once stored, several per commit', async () => {
      const commits = async () => {
        const values = (await t.hub.ctx.metrics.telemetryCommitRows.get()).values;
        const pick = (name: string) => values.find((v) => v.metricName === name)?.value ?? 0;
        return {
          count: pick('edgefleet_telemetry_commit_rows_count'),
          sum: pick('edgefleet_telemetry_commit_rows_sum'),
        };
      };
      const before = await commits();
      const [devices, perDevice, inFlight] = [4, 150, 20];
      const fleet = await Promise.all(
        Array.from({ length: devices }, async (_, i) => {
          const d = await enrollDevice(t, `burst-${i}`);
          return { ...d, client: await connectDevice(brokerUrl, d.deviceId, d.secret) };
        }),
      );
      const notStoredWhenAcked: string[] = [];
      await Promise.all(
        fleet.map(async (d) => {
          let next = 1;
          await Promise.all(
            Array.from({ length: inFlight }, async () => {
              while (next <= perDevice) {
                const seq = next++;
                await d.client.publishAsync(
                  topics.telemetry(d.deviceId),
                  encodeMessage({ samples: [sample(seq)] }),
                  { qos: 1 },
                );
                // The embedded broker's PUBACK came: the sample must already be in the store. (Through
                // Mosquitto the device's PUBACK is the broker's; the hub acknowledges to Mosquitto.)
                if (setup.external) continue;
                const stored = await t.hub.ctx.store.devices.telemetry(d.deviceId, {
                  sinceSeq: seq - 1,
                  limit: perDevice,
                });
                if (!stored.some((s) => s.seq === seq)) notStoredWhenAcked.push(`${d.deviceId}#${seq}`);
              }
            }),
          );
        }),
      );
      expect(notStoredWhenAcked).toEqual([]);
      await waitFor(async () => {
        const counts = await Promise.all(
          fleet.map((d) => t.hub.ctx.store.devices.telemetryCount(d.deviceId)),
        );
        return counts.every((n) => n >= perDevice);
      }, 'every sample stored');
      for (const d of fleet) {
        const seqs = (await t.hub.ctx.store.devices.telemetry(d.deviceId, { limit: 1000 })).map((s) => s.seq);
        expect(seqs).toEqual(Array.from({ length: perDevice }, (_, i) => i + 1));
        expect((await t.hub.ctx.store.devices.get(d.deviceId))?.lastTelemetry?.seq).toBe(perDevice);
      }
      // Several messages in flight between broker and hub: some commits carried more than one sample
      // (one message at a time gives exactly one sample per commit).
      const after = await commits();
      expect(after.sum - before.sum).toBe(devices * perDevice);
      expect(after.count - before.count).toBeLessThan(devices * perDevice);
      await Promise.all(fleet.map((d) => d.client.endAsync()));
    });

    it("applies a device's reported states in the order it sent them, even when many are in flight", async () => {
      const d = await enrollDevice(t, 'reporter');
      const client = await connectDevice(brokerUrl, d.deviceId, d.secret);
      const base = Date.parse('2026-01-01T00:00:00Z');
      const reports = 100;
      await Promise.all(
        Array.from({ length: reports }, (_, i) => {
          const reported: ReportedState = {
            desiredRevision: i,
            ts: new Date(base + i * 1000).toISOString(),
            agentVersion: '0.1.0',
            profile: null,
            runtimes: [],
            transfers: [],
            models: {},
          };
          return client.publishAsync(topics.reported(d.deviceId), encodeMessage(reported), { qos: 1 });
        }),
      );
      // Each report was handled (they were acknowledged), and the last one sent is what stays.
      await waitFor(
        async () =>
          (await t.hub.ctx.store.devices.get(d.deviceId))?.reported?.desiredRevision === reports - 1,
        'the last report stored',
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await t.hub.ctx.store.devices.get(d.deviceId))?.reported?.desiredRevision).toBe(reports - 1);
      await client.publishAsync(topics.reported(d.deviceId), '', { qos: 1, retain: true });
      await client.endAsync();
    });

    it('delivers the desired state and completes the rollout when the device reports active', async () => {
      const { key, packed, artifactSha256 } = await fakeBundle('flow', '1.0.0');
      await t.api('POST', '/api/v1/keys', { name: 'flow', publicKey: key.publicKey });
      expect((await t.api('PUT', '/api/v1/models/flow/versions/1.0.0', packed.bytes)).status).toBe(201);
      const d = await enrollDevice(t, 'flow-dev', ['flow']);
      const client = await connectDevice(brokerUrl, d.deviceId, d.secret);
      const desired = new Promise<{
        revision: number;
        models: Record<string, { deploymentId: string; artifact: { sha256: string } }>;
      }>((resolve) =>
        client.on('message', (_topic, payload) => {
          if (payload.length > 0) resolve(JSON.parse(payload.toString()));
        }),
      );
      await client.subscribeAsync(topics.desired(d.deviceId), { qos: 1 });
      const rollout = await t.api<{ id: string }>('POST', '/api/v1/rollouts', {
        model: 'flow',
        version: '1.0.0',
        target: { tags: ['flow'] },
      });
      expect(rollout.status).toBe(201);
      const state = await desired;
      expect(state.models.flow?.artifact.sha256).toBe(artifactSha256);
      expect(state.models.flow?.deploymentId).toBe(rollout.body.id);
      const now = new Date().toISOString();
      const reported: ReportedState = {
        desiredRevision: state.revision,
        ts: now,
        agentVersion: '0.1.0',
        profile: null,
        runtimes: [],
        transfers: [],
        models: {
          flow: {
            active: {
              name: 'flow',
              version: '1.0.0',
              sha256: artifactSha256,
              target: 'cpu',
              runtime: 'onnxruntime',
              since: now,
            },
            previous: null,
            deployment: {
              deploymentId: rollout.body.id,
              name: 'flow',
              version: '1.0.0',
              state: 'active',
              updatedAt: now,
            },
          },
        },
      };
      await client.publishAsync(topics.reported(d.deviceId), encodeMessage(reported), {
        qos: 1,
        retain: true,
      });
      await waitFor(
        async () =>
          (await t.api<{ state: string }>('GET', `/api/v1/rollouts/${rollout.body.id}`)).body.state ===
          'completed',
        'rollout completed',
      );
      await client.publishAsync(topics.reported(d.deviceId), '', { qos: 1, retain: true });
      await client.endAsync();
    });
  });
}
