/**
 * Rollout fan-out: a rollout of one version to N simulated devices (real enrollments, real MQTT
 * connections) in one batch; each device answers its desired state by reporting the deployment
 * active, as an agent does once installed. Timed from POST /rollouts to every device having its
 * desired state, and to the rollout completed. Baseline: the same number of clients on a bare
 * aedes broker, one message out to each and one reply back: the broker round trip alone.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { encodeMessage, type ReportedState, topics } from '@edgefleet/protocol';
import mqtt from 'mqtt';
import { connectFleet, enrollFleet, pool } from '../soak/simulated-fleet.ts';
import { startBenchHub } from './hub.ts';
import { type BenchModule, row, until } from './types.ts';

const MODEL = 'bench-fanout';

/** What an agent reports once `model`@1.0.0 from `deploymentId` is active (no download needed). */
export function activeReport(
  model: string,
  deploymentId: string,
  revision: number,
  sha256: string,
): ReportedState {
  const now = new Date().toISOString();
  return {
    desiredRevision: revision,
    ts: now,
    agentVersion: 'bench',
    profile: null,
    runtimes: [],
    transfers: [],
    models: {
      [model]: {
        active: { name: model, version: '1.0.0', sha256, target: 'cpu', runtime: 'onnxruntime', since: now },
        previous: null,
        deployment: { deploymentId, name: model, version: '1.0.0', state: 'active', updatedAt: now },
      },
    },
  };
}

/** ms for `count` clients on a bare aedes broker to each get one message and answer it. */
async function brokerRoundTrip(count: number): Promise<number> {
  const { Aedes } = await import('aedes');
  const broker = await Aedes.createBroker();
  const server = createServer(broker.handle);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = server.address();
  const url = `mqtt://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const prefix = `rt-${randomBytes(3).toString('hex')}`;
  const hub = await mqtt.connectAsync(url, { clientId: `${prefix}-hub` });
  let replies = 0;
  hub.on('message', () => replies++);
  await hub.subscribeAsync(`${prefix}/+/reply`, { qos: 1 });
  const clients = await pool(
    Array.from({ length: count }, (_, i) => i),
    50,
    async (i) => {
      const c = await mqtt.connectAsync(url, { clientId: `${prefix}-${i}`, reconnectPeriod: 0 });
      c.on('message', () => void c.publishAsync(`${prefix}/${i}/reply`, 'ok', { qos: 1 }));
      await c.subscribeAsync(`${prefix}/${i}/desired`, { qos: 1 });
      return c;
    },
  );
  try {
    const t0 = performance.now();
    await Promise.all(
      clients.map((_, i) =>
        hub.publishAsync(`${prefix}/${i}/desired`, 'x'.repeat(2000), { qos: 1, retain: true }),
      ),
    );
    await until(() => replies >= count, `${count} replies`, 120_000, 5);
    return performance.now() - t0;
  } finally {
    await pool(clients, 50, (c) => c.endAsync());
    await hub.endAsync();
    await new Promise((ok) => server.close(ok));
    await new Promise<void>((ok) => broker.close(() => ok()));
  }
}

export const fanoutBench: BenchModule = {
  name: 'fanout',
  title: 'Rollout fan-out to simulated devices',
  async run(ctx) {
    const count = ctx.quick ? 100 : 1000;
    const { mlpModel } = await import('@edgefleet/converters');
    const hub = await startBenchHub();
    const fleet: Awaited<ReturnType<typeof connectFleet>> = [];
    try {
      await hub.api(
        'PUT',
        `/models/${MODEL}/versions/1.0.0`,
        mlpModel({ inputs: 4, hidden: [8], outputs: 2, seed: 1 }),
      );
      ctx.progress(`enrolling and connecting ${count} simulated devices…`);
      fleet.push(...(await connectFleet(await enrollFleet(hub.url, hub.adminToken, count))));
      let received = 0;
      // Each device's last report, to publish again if the hub has not taken it (see below).
      const reports = new Map<string, string>();
      await pool(fleet, 50, async (d) => {
        let answered = false;
        d.client.on('message', (topic, payload) => {
          if (topic !== topics.desired(d.deviceId) || payload.length === 0 || answered) return;
          const desired = JSON.parse(payload.toString()) as {
            revision: number;
            models: Record<string, { deploymentId: string; artifact: { sha256: string } }>;
          };
          const slot = desired.models[MODEL];
          if (!slot) return;
          answered = true;
          received++;
          const message = encodeMessage(
            activeReport(MODEL, slot.deploymentId, desired.revision, slot.artifact.sha256),
          );
          reports.set(d.deviceId, message);
          void d.client.publishAsync(topics.reported(d.deviceId), message, { qos: 1, retain: true });
        });
        await d.client.subscribeAsync(topics.desired(d.deviceId), { qos: 1 });
      });
      ctx.progress(`rolling out to ${count} devices…`);
      const t0 = performance.now();
      const rollout = await hub.api<{ id: string }>('POST', '/rollouts', {
        model: MODEL,
        version: '1.0.0',
        target: { tags: ['soak'] },
        batches: ['100%'],
        soakSeconds: 0,
      });
      await until(() => received >= count, `${count} devices to get their desired state`, 300_000, 5);
      const desiredMs = performance.now() - t0;
      // Reports that arrive together can be lost by the hub (a device stays "assigned" though it
      // reported "active"). Agents only report on change, so a lost report would stall the rollout:
      // here every device whose rollout state is not yet active reports again every 2 s, and the
      // rounds needed are a row of their own.
      let rereports = 0;
      let lastRound = performance.now();
      await until(
        async () => {
          if ((await hub.hub.ctx.store.rollouts.get(rollout.id))?.state === 'completed') return true;
          if (performance.now() - lastRound > 2000) {
            lastRound = performance.now();
            const members = await hub.hub.ctx.store.rollouts.devices(rollout.id);
            const behind = new Set(members.filter((m) => m.state !== 'active').map((m) => m.deviceId));
            rereports += behind.size;
            await pool(
              fleet.filter((d) => behind.has(d.deviceId) && reports.has(d.deviceId)),
              50,
              (d) =>
                d.client.publishAsync(topics.reported(d.deviceId), reports.get(d.deviceId) as string, {
                  qos: 1,
                  retain: true,
                }),
            );
          }
          return false;
        },
        'the rollout to complete',
        120_000,
        20,
      ).catch(async (error: Error) => {
        const view = await hub.api<{ state: string; counts: unknown }>('GET', `/rollouts/${rollout.id}`);
        throw new Error(`${error.message} (state ${view.state}, devices ${JSON.stringify(view.counts)})`);
      });
      const completedMs = performance.now() - t0;
      ctx.progress('broker round trip baseline…');
      const floorMs = await brokerRoundTrip(count);
      return {
        name: 'fanout',
        title: this.title,
        rows: [
          row(`${count} devices have their desired state`, desiredMs / 1000, 's', {
            baseline: floorMs / 1000,
          }),
          row(`rollout to ${count} devices completed`, completedMs / 1000, 's', {
            baseline: floorMs / 1000,
            // The target is for 1,000 devices: a --quick run with fewer is not judged.
            ...(count === 1000 ? { target: '< 10 s', met: completedMs < 10_000 } : {}),
          }),
          row('reports the hub missed (sent again after 2 s)', rereports, 'reports', {
            target: '0',
            met: rereports === 0,
          }),
        ],
        skipped: [],
        notes: [
          `${count} devices enrolled over HTTP and connected over MQTT to the embedded broker (SQLite); one batch of 100 %, no soak; devices report "active" as soon as their desired state arrives (no download). Baseline: ${count} clients on a bare aedes broker receiving one retained 2 KB message each and replying.`,
        ],
      };
    } finally {
      await pool(fleet, 50, (d) => d.client.endAsync());
      await hub.stop();
    }
  },
};
