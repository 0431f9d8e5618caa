/**
 * Telemetry ingest: simulated devices publish health samples at QoS 1 as fast as the broker takes
 * them; the rate is messages over the time until the hub has stored them all (its
 * telemetry-stored counter). The baseline is the broker's raw rate measured the same way: the
 * same clients, payloads and QoS, counted by one plain subscriber, with no hub attached (the
 * embedded broker's engine, aedes, on its own; Mosquitto as it runs).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { encodeMessage, topics } from '@edgefleet/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import { connectFleet, enrollFleet, pool } from '../soak/simulated-fleet.ts';
import { MOSQUITTO_URL, POSTGRES_URL, reachable, startBenchHub } from './hub.ts';
import { type BenchModule, type BenchResult, type BenchRow, row } from './types.ts';

const IN_FLIGHT = 20;

function sample(seq: number) {
  return encodeMessage({
    samples: [
      {
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
      },
    ],
  });
}

/** Each client publishes `perClient` messages to `topic(i)`, at most IN_FLIGHT unacknowledged. */
async function publishAll(clients: MqttClient[], topic: (i: number) => string, perClient: number) {
  await Promise.all(
    clients.map(async (client, i) => {
      let next = 1;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next <= perClient) {
            const seq = next++;
            await client.publishAsync(topic(i), sample(seq), { qos: 1 });
          }
        }),
      );
    }),
  );
}

/**
 * Wait until `count()` reaches `total`, or stops growing for `stallMs` (a broker that drops
 * messages: Mosquitto's default queue holds 1,000 QoS 1 messages per subscriber). Resolves with
 * what arrived and the seconds from `t0` to the last arrival.
 */
async function arrivals(
  count: () => number | Promise<number>,
  total: number,
  t0: number,
  stallMs = 10_000,
): Promise<{ received: number; seconds: number }> {
  let last = await count();
  let lastAt = performance.now();
  while (last < total && performance.now() - lastAt < stallMs) {
    await new Promise((r) => setTimeout(r, 5));
    const now = await count();
    if (now !== last) [last, lastAt] = [now, performance.now()];
  }
  return { received: last, seconds: (lastAt - t0) / 1000 };
}

interface Rate {
  rate: number;
  lost: number;
}

/** The raw rate of a broker at `url`: the same load, counted by one subscriber. */
async function rawRate(url: string, clients: number, perClient: number): Promise<Rate> {
  const prefix = `edgefleet-bench/${randomBytes(4).toString('hex')}`;
  const total = clients * perClient;
  const subscriber = await mqtt.connectAsync(url, { clientId: `${prefix}-sub`, clean: true });
  let received = 0;
  subscriber.on('message', () => received++);
  await subscriber.subscribeAsync(`${prefix}/#`, { qos: 1 });
  const publishers = await pool(
    Array.from({ length: clients }, (_, i) => i),
    50,
    (i) => mqtt.connectAsync(url, { clientId: `${prefix}-${i}`, clean: true, reconnectPeriod: 0 }),
  );
  try {
    const t0 = performance.now();
    await publishAll(publishers, (i) => `${prefix}/${i}/telemetry`, perClient);
    const got = await arrivals(() => received, total, t0);
    return { rate: got.received / got.seconds, lost: total - got.received };
  } finally {
    await pool(publishers, 50, (c) => c.endAsync());
    await subscriber.endAsync();
  }
}

/** aedes on its own (no auth, no hub), on a free port: the embedded broker's engine. */
async function standaloneAedes(): Promise<{ url: string; close(): Promise<void> }> {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `mqtt://127.0.0.1:${port}`,
    close: async () => {
      await new Promise((ok) => server.close(ok));
      await new Promise<void>((ok) => broker.close(() => ok()));
    },
  };
}

async function createDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const pg = (await import('pg')).default;
  const name = `edgefleet_bench_${randomBytes(6).toString('hex')}`;
  const run = async (sql: string) => {
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await run(`CREATE DATABASE ${name}`);
  const url = new URL(POSTGRES_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => run(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** Messages/s stored by a hub on `broker` with `db`. */
async function ingestRate(
  options: { db?: string; mqttUrl?: string },
  devices: number,
  perDevice: number,
): Promise<Rate> {
  const hub = await startBenchHub(options);
  try {
    const fleet = await connectFleet(await enrollFleet(hub.url, hub.adminToken, devices, options.mqttUrl));
    const stored = async () => (await hub.hub.ctx.metrics.telemetryStored.get()).values[0]?.value ?? 0;
    const before = await stored();
    const total = devices * perDevice;
    const t0 = performance.now();
    await publishAll(
      fleet.map((d) => d.client),
      (i) => topics.telemetry(fleet[i]?.deviceId as string),
      perDevice,
    );
    const got = await arrivals(async () => (await stored()) - before, total, t0);
    // Clear the retained online status so Mosquitto does not keep bench devices forever.
    await pool(fleet, 50, async (d) => {
      await d.client.publishAsync(topics.status(d.deviceId), '', { qos: 1, retain: true });
      await d.client.endAsync();
    });
    return { rate: got.received / got.seconds, lost: total - got.received };
  } finally {
    await hub.stop();
  }
}

export const telemetryBench: BenchModule = {
  name: 'telemetry',
  title: 'Telemetry ingest (QoS 1) vs the raw broker rate',
  async run(ctx): Promise<BenchResult> {
    const devices = ctx.quick ? 20 : 100;
    const perDevice = ctx.quick ? 100 : 500;
    const rows: BenchRow[] = [];
    const skipped: BenchResult['skipped'] = [];
    const [hasMosquitto, hasPostgres] = [
      await reachable(MOSQUITTO_URL, 1883),
      await reachable(POSTGRES_URL, 5432),
    ];
    for (const broker of ['embedded', 'mosquitto'] as const) {
      if (broker === 'mosquitto' && !hasMosquitto) {
        skipped.push({ name: 'Mosquitto rows', reason: `Mosquitto is not reachable at ${MOSQUITTO_URL}` });
        continue;
      }
      ctx.progress(`${broker}: raw broker rate…`);
      let raw: Rate;
      if (broker === 'embedded') {
        const aedes = await standaloneAedes();
        raw = await rawRate(aedes.url, devices, perDevice).finally(() => aedes.close());
      } else {
        raw = await rawRate(MOSQUITTO_URL, devices, perDevice);
      }
      rows.push(row(`${broker} broker: raw publish rate`, raw.rate, 'msg/s'));
      if (raw.lost > 0)
        rows.push(row(`${broker} broker: raw messages lost`, raw.lost, 'msg', { target: '0', met: false }));
      for (const store of ['sqlite', 'postgres'] as const) {
        if (store === 'postgres' && !hasPostgres) {
          skipped.push({
            name: `${broker} + PostgreSQL`,
            reason: `PostgreSQL is not reachable at ${new URL(POSTGRES_URL).host}`,
          });
          continue;
        }
        ctx.progress(`${broker} broker + ${store}: ingesting ${devices * perDevice} messages…`);
        const db = store === 'postgres' ? await createDatabase() : undefined;
        try {
          const result = await ingestRate(
            { ...(db ? { db: db.url } : {}), ...(broker === 'mosquitto' ? { mqttUrl: MOSQUITTO_URL } : {}) },
            devices,
            perDevice,
          );
          const label = `${broker} broker → ${store === 'sqlite' ? 'SQLite' : 'PostgreSQL'}`;
          rows.push(
            row(label, result.rate, 'msg/s', {
              baseline: raw.rate,
              target: '≥ 10,000 msg/s and ≥ 0.50× raw',
              met: result.rate >= 10_000 && result.rate >= 0.5 * raw.rate,
            }),
            row(`${label}: samples not stored`, result.lost, 'msg', { target: '0', met: result.lost === 0 }),
          );
        } catch (error) {
          // One setup failing (a service half-up, say) must not lose the others' rows.
          skipped.push({ name: `${broker} + ${store}`, reason: `failed: ${(error as Error).message}` });
        } finally {
          await db?.drop();
        }
      }
    }
    return {
      name: 'telemetry',
      title: this.title,
      rows,
      skipped,
      notes: [
        `${devices} simulated devices × ${perDevice} messages (one health sample each), QoS 1, ${IN_FLIGHT} in flight per device; hub, broker (embedded) and publishers share this process. A rate counts what arrived over the time to the last arrival; messages that never arrive within 10 s of the last one are counted as lost.`,
      ],
    };
  },
};
