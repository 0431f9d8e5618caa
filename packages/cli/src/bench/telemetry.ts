/**
 * Telemetry ingest: simulated devices publish health samples at QoS 1 as fast as the broker takes
 * them; the rate is messages over the time until the hub has stored them all (its
 * telemetry-stored counter). The baseline is the broker's raw rate measured the same way: the
 * same clients, payloads and QoS, counted by one plain subscriber, with no hub attached (the
 * embedded broker's engine, aedes, on its own; Mosquitto as it runs).
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { topics } from '@edgefleet/protocol';
import mqtt from 'mqtt';
import { enrollFleet } from '../soak/simulated-fleet.ts';
import { MOSQUITTO_URL, POSTGRES_URL, reachable, startBenchHub } from './hub.ts';
import { BENCH_MOSQUITTO_SETTINGS, hasMosquittoBinary, startBenchMosquitto } from './mosquitto.ts';
import { type PublisherSpec, startPublishers } from './publishers.ts';
import { type BenchModule, type BenchResult, type BenchRow, row } from './types.ts';

const IN_FLIGHT = 20;

/**
 * Connects the clients in a worker thread, then publishes `perClient` messages from each (at most
 * IN_FLIGHT unacknowledged); `count` counts what arrived. Times from the start of publishing.
 */
async function publishAndCount(
  specs: PublisherSpec[],
  perClient: number,
  count: () => number | Promise<number>,
): Promise<Rate> {
  const publishers = await startPublishers(specs);
  try {
    const before = await count();
    const total = specs.length * perClient;
    const t0 = performance.now();
    const published = publishers.publish(perClient, IN_FLIGHT);
    const got = await arrivals(async () => (await count()) - before, total, t0);
    await published;
    return { rate: got.received / got.seconds, lost: total - got.received };
  } finally {
    await publishers.close();
  }
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
  const subscriber = await mqtt.connectAsync(url, { clientId: `${prefix}-sub`, clean: true });
  let received = 0;
  subscriber.on('message', () => received++);
  await subscriber.subscribeAsync(`${prefix}/#`, { qos: 1 });
  try {
    const specs = Array.from({ length: clients }, (_, i) => ({
      url,
      clientId: `${prefix}-${i}`,
      topic: `${prefix}/${i}/telemetry`,
    }));
    return await publishAndCount(specs, perClient, () => received);
  } finally {
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
    const fleet = await enrollFleet(hub.url, hub.adminToken, devices, options.mqttUrl);
    const stored = async () => (await hub.hub.ctx.metrics.telemetryStored.get()).values[0]?.value ?? 0;
    return await publishAndCount(
      fleet.map((d) => ({
        url: d.mqtt.url,
        clientId: d.deviceId,
        username: d.deviceId,
        password: d.secret,
        topic: topics.telemetry(d.deviceId),
      })),
      perDevice,
      stored,
    );
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
    // A Mosquitto of the bench's own, configured as docs/scale-out.md recommends, unless
    // EDGEFLEET_BENCH_MQTT names one (or there is no mosquitto binary: then the system one).
    const ownMosquitto = process.env.EDGEFLEET_BENCH_MQTT === undefined && hasMosquittoBinary();
    const [hasMosquitto, hasPostgres] = [
      ownMosquitto || (await reachable(MOSQUITTO_URL, 1883)),
      await reachable(POSTGRES_URL, 5432),
    ];
    const notes: string[] = [];
    for (const broker of ['embedded', 'mosquitto'] as const) {
      if (broker === 'mosquitto' && !hasMosquitto) {
        skipped.push({ name: 'Mosquitto rows', reason: `Mosquitto is not reachable at ${MOSQUITTO_URL}` });
        continue;
      }
      ctx.progress(`${broker}: raw broker rate…`);
      let raw: Rate;
      let mosquitto: { url: string; stop(): Promise<void> } | undefined;
      if (broker === 'embedded') {
        const aedes = await standaloneAedes();
        raw = await rawRate(aedes.url, devices, perDevice).finally(() => aedes.close());
      } else {
        mosquitto = ownMosquitto ? await startBenchMosquitto() : { url: MOSQUITTO_URL, stop: async () => {} };
        notes.push(
          ownMosquitto
            ? `Mosquitto rows: a mosquitto started by the bench on its own port with the settings docs/scale-out.md recommends (${BENCH_MOSQUITTO_SETTINGS.join(', ')}, persistence true); the hub's link keeps up to 100 messages in flight (its default).`
            : `Mosquitto rows: the broker at ${MOSQUITTO_URL} as it is configured (not started by the bench).`,
        );
        raw = await rawRate(mosquitto.url, devices, perDevice).catch(async (error: unknown) => {
          await mosquitto?.stop();
          throw error;
        });
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
            { ...(db ? { db: db.url } : {}), ...(mosquitto ? { mqttUrl: mosquitto.url } : {}) },
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
      await mosquitto?.stop();
    }
    return {
      name: 'telemetry',
      title: this.title,
      rows,
      skipped,
      notes: [
        `${devices} simulated devices × ${perDevice} messages (one health sample each), QoS 1, ${IN_FLIGHT} in flight per device. The devices publish from a worker thread (their own event loop, so the other core); hub, embedded broker and the raw-rate subscriber run in the bench process. A rate counts what arrived over the time to the last arrival; messages that never arrive within 10 s of the last one are counted as lost.`,
        ...notes,
      ],
    };
  },
};
