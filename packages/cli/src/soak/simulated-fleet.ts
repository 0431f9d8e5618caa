/**
 * Simulated agents for load tests: real enrollments and real MQTT connections with device
 * credentials, each sending telemetry (and stats windows) on a schedule with sequence numbers.
 */
import { encodeMessage, topics } from '@edgefleet/protocol';
import mqtt, { type MqttClient } from 'mqtt';

export interface SimulatedDevice {
  deviceId: string;
  client: MqttClient;
  sent: number;
  statsSent?: number;
}

interface Enrolled {
  deviceId: string;
  secret: string;
  mqtt: { url: string };
}

/** Run `work` over `items` with at most `limit` in flight. */
export async function pool<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i] as T, i);
      }
    }),
  );
  return results;
}

export async function enrollFleet(
  hub: string,
  adminToken: string,
  count: number,
  mqttUrl?: string,
): Promise<Enrolled[]> {
  const headers = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
  const tokenResponse = await fetch(`${hub}/api/v1/enrollment-tokens`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ uses: count, tags: ['soak'] }),
  });
  const { token } = (await tokenResponse.json()) as { token: string };
  const enrolled = await pool(
    Array.from({ length: count }, (_, i) => i),
    16,
    async (i) => {
      const r = await fetch(`${hub}/api/v1/enroll`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          token,
          name: `soak-${String(i).padStart(4, '0')}`,
          facts: { arch: 'arm64', platform: 'linux' },
        }),
      });
      if (!r.ok) throw new Error(`enrolling simulated device ${i}: ${r.status} ${await r.text()}`);
      return (await r.json()) as Enrolled;
    },
  );
  return mqttUrl ? enrolled.map((e) => ({ ...e, mqtt: { url: mqttUrl } })) : enrolled;
}

export async function connectFleet(enrolled: readonly Enrolled[]): Promise<SimulatedDevice[]> {
  return pool(enrolled, 50, async (e) => {
    const client = await mqtt.connectAsync(e.mqtt.url, {
      clientId: e.deviceId,
      username: e.deviceId,
      password: e.secret,
      reconnectPeriod: 1000,
      keepalive: 60,
    });
    await client.publishAsync(
      topics.status(e.deviceId),
      encodeMessage({ state: 'online', agentVersion: 'soak', ts: new Date().toISOString() }),
      { qos: 1, retain: true },
    );
    return { deviceId: e.deviceId, client, sent: 0 };
  });
}

/** One telemetry message from a simulated device (the next sequence number). */
export async function sendTelemetry(d: SimulatedDevice): Promise<void> {
  const seq = d.sent + 1;
  const sample = {
    seq,
    ts: new Date().toISOString(),
    cpu_load_pct: 20 + (seq % 30),
    mem_used_mb: 400,
    mem_total_mb: 4000,
    rss_mb: 70,
    disk_free_mb: 20_000,
    disk_total_mb: 30_000,
    temp_c: 45 + (seq % 10),
    uptime_s: seq * 10,
    inference: { requests: 100, errors: 0, latency_p50_ms: 3.1, latency_p95_ms: 5.2 },
  };
  await d.client.publishAsync(topics.telemetry(d.deviceId), encodeMessage({ samples: [sample] }), { qos: 1 });
  d.sent = seq;
  if (seq % 3 === 0) {
    // A prediction-statistics window every third tick: bin counts and moments, as agents send them.
    const window = {
      n: 300,
      features: { x0: { counts: [10, 40, 120, 90, 30, 10], sum: 12.5, sumSq: 310.2, invalid: 0 } },
    };
    const start = new Date(Date.now() - 30_000).toISOString();
    await d.client.publishAsync(
      topics.stats(d.deviceId),
      encodeMessage({
        windows: [{ seq: seq / 3, model: 'soak-model', version: '1.0.0', start, end: sample.ts, window }],
      }),
      { qos: 1 },
    );
    d.statsSent = (d.statsSent ?? 0) + 1;
  }
}

export function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}
