/**
 * Device A against device B, with A's own credentials: it cannot read B's desired state, publish
 * as B, connect as B, or fetch B's artifacts — on the embedded broker and on Mosquitto, where the
 * hub manages per-device clients and ACLs through the dynamic-security plugin.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mlpModel } from '@edgefleet/converters';
import { encodeMessage, topics } from '@edgefleet/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { type HubProc, hubApi, spawnHub } from '../support/processes.ts';
import { type MosquittoProcess, requireService, startMosquitto, waitFor } from '../support/services.ts';

const mosquitto = await requireService('mosquitto-binary');

interface Enrolled {
  deviceId: string;
  secret: string;
  mqtt: { url: string };
}

const setups = [
  { name: 'the embedded broker', available: true, dynsec: false },
  { name: 'Mosquitto with dynamic security', available: mosquitto.available, dynsec: true },
];

for (const setup of setups) {
  describe.skipIf(!setup.available)(`device isolation on ${setup.name}`, () => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterAll(async () => {
      // Bounded: a cleanup that hangs (a half-closed client) must not hold the suite.
      for (const c of cleanups.reverse())
        await Promise.race([c().catch(() => undefined), new Promise((r) => setTimeout(r, 5000))]);
    });

    it('refuses device A every access to device B', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'ef-iso-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      let broker: MosquittoProcess | undefined;
      if (setup.dynsec) {
        broker = await startMosquitto('', {
          dynsecAdmin: { username: 'edgefleet-hub', password: 'hub-admin-secret' },
        });
        cleanups.push(() => (broker as MosquittoProcess).stop());
      }
      const hub: HubProc = await spawnHub({
        dataDir: join(dir, 'hub'),
        args: broker
          ? [
              '--mqtt-url',
              `mqtt://edgefleet-hub:hub-admin-secret@127.0.0.1:${broker.port}`,
              '--mqtt-dynsec',
              '--replica-id',
              'iso',
            ]
          : [],
      });
      cleanups.push(() => hub.kill());
      const api = hubApi(hub.url, hub.adminToken);
      const enroll = async (name: string, tags: string[]) => {
        const { token } = await api<{ token: string }>('POST', '/enrollment-tokens', { uses: 1, tags });
        const response = await fetch(`${hub.url}/api/v1/enroll`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ token, name, facts: { arch: 'x64', platform: 'linux' } }),
        });
        return (await response.json()) as Enrolled;
      };
      const a = await enroll('device-a', ['a']);
      const b = await enroll('device-b', ['b']);
      const brokerUrl = a.mqtt.url;
      if (broker) expect(brokerUrl).toBe(`mqtt://127.0.0.1:${broker.port}`);

      // B is assigned a model: B's desired state and artifact exist.
      const published = await api<{ files: { file: string; sha256: string }[] }>(
        'PUT',
        '/models/secret-model/versions/1.0.0',
        mlpModel({ inputs: 4, hidden: [4], outputs: 2 }),
      );
      const sha = published.files.find((f) => f.file === 'cpu/model.onnx')?.sha256 as string;
      await api('POST', '/rollouts', { model: 'secret-model', version: '1.0.0', target: { tags: ['b'] } });

      const connect = (username: string, password: string, clientId = username) =>
        mqtt.connectAsync(brokerUrl, {
          clientId,
          username,
          password,
          reconnectPeriod: 0,
          connectTimeout: 5000,
        });
      const clientB: MqttClient = await connect(b.deviceId, b.secret);
      cleanups.push(() => clientB.endAsync(true));
      const bDesired = new Promise<string>((resolve) =>
        clientB.on('message', (_t, p) => resolve(p.toString())),
      );
      await clientB.subscribeAsync(topics.desired(b.deviceId), { qos: 1 });
      expect(JSON.parse(await bDesired).models['secret-model'].artifact.sha256).toBe(sha);

      const clientA: MqttClient = await connect(a.deviceId, a.secret);
      cleanups.push(() => clientA.endAsync(true));
      const leaked: string[] = [];
      clientA.on('message', (topic) => leaked.push(topic));

      // 1. Read B's desired state: refused (SUBACK 0x80), and nothing arrives.
      await expect(clientA.subscribeAsync(topics.desired(b.deviceId), { qos: 1 })).rejects.toThrow();
      await expect(clientA.subscribeAsync('edgefleet/v1/devices/+/desired', { qos: 1 })).rejects.toThrow();
      // 2. Publish as B: the broker drops it; the hub stores nothing for B.
      const forged = {
        samples: [
          {
            seq: 1,
            ts: new Date().toISOString(),
            cpu_load_pct: 99,
            mem_used_mb: 1,
            mem_total_mb: 1,
            rss_mb: 1,
            disk_free_mb: 1,
            disk_total_mb: 1,
            temp_c: null,
            uptime_s: 1,
          },
        ],
      };
      clientA.publish(topics.telemetry(b.deviceId), encodeMessage(forged), { qos: 1 });
      clientA.publish(topics.reported(b.deviceId), encodeMessage({ nope: true }), { qos: 1 });
      // 3. Connect as B with A's secret, or take B's client id.
      await expect(connect(b.deviceId, a.secret)).rejects.toThrow();
      await expect(connect(a.deviceId, a.secret, b.deviceId)).rejects.toThrow();
      // 4. Fetch B's model with A's credentials.
      const fetchAs = (secret: string, path: string) =>
        fetch(`${hub.url}/api/v1${path}`, { headers: { authorization: `Bearer ${secret}` } });
      expect((await fetchAs(a.secret, `/artifacts/${sha}`)).status).toBe(403);
      expect((await fetchAs(a.secret, '/models/secret-model/versions/1.0.0/manifest')).status).toBe(403);
      expect((await fetchAs(b.secret, `/artifacts/${sha}`)).status).toBe(200);

      // The genuine B still works, and a message from B reaches the hub (so the silence above means something).
      await clientB.publishAsync(
        topics.telemetry(b.deviceId),
        encodeMessage({ samples: [{ ...forged.samples[0], seq: 7, cpu_load_pct: 5 }] }),
        { qos: 1 },
      );
      await waitFor(
        async () =>
          (await api<{ samples: { seq: number }[] }>('GET', `/devices/${b.deviceId}/telemetry`)).samples
            .length > 0,
        'B telemetry stored',
      );
      expect(
        (
          await api<{ samples: { seq: number; cpu_load_pct: number }[] }>(
            'GET',
            `/devices/${b.deviceId}/telemetry`,
          )
        ).samples.map((s) => s.seq),
      ).toEqual([7]);
      expect(leaked).toEqual([]);

      // Revoking B cuts it off at once.
      const closed = new Promise<void>((resolve) => clientB.once('close', () => resolve()));
      await api('DELETE', `/devices/${b.deviceId}`);
      await closed;
      await expect(connect(b.deviceId, b.secret)).rejects.toThrow();
    }, 120_000);
  });
}
