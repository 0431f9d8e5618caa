/**
 * Three hub replicas sharing PostgreSQL (store and artifacts) and Mosquitto (MQTT 5 shared
 * subscriptions), 100 agents: every telemetry sample stored once, a staged rollout that advances
 * once per step while a replica is killed, the same answers from every replica, and live updates
 * that reach a browser on another replica.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mlpModel } from '@edgefleet/converters';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/postgres.ts';
import { type HubProc, hubApi, spawnCli, spawnHub } from '../support/processes.ts';
import { requireService, startMosquitto, waitFor } from '../support/services.ts';

const postgres = await requireService('postgres');
const mosquitto = await requireService('mosquitto-binary');
const AGENTS = 100;

interface Sample {
  seq: number;
}

describe.skipIf(!postgres.available || !mosquitto.available)('scale-out: three replicas', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse())
      await Promise.race([c().catch(() => undefined), new Promise((r) => setTimeout(r, 10_000))]);
  });

  it('shares the work with nothing lost or doubled, and survives losing a replica', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ef-scale-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const db = await createTestDatabase();
    cleanups.push(() => db.drop());
    const broker = await startMosquitto('allow_anonymous true\n', { persistent: true });
    cleanups.push(() => broker.stop());
    const adminToken = 'efa_scale_admin';
    const replica = (i: number) =>
      spawnHub({
        dataDir: join(dir, `hub-${i}`),
        adminToken,
        args: [
          '--db',
          db.url,
          '--artifacts',
          'db',
          '--mqtt-url',
          broker.url,
          '--mqtt-shared-group',
          'edgefleet',
          '--replica-id',
          `replica-${i}`,
        ],
      });
    const hubs: HubProc[] = [];
    for (let i = 0; i < 3; i++) hubs.push(await replica(i));
    cleanups.push(() => Promise.all(hubs.map((h) => h.kill())));
    const api = (i: number) => hubApi((hubs[i] as HubProc).url, adminToken);

    const { token } = await api(0)<{ token: string }>('POST', '/enrollment-tokens', {
      uses: AGENTS,
      tags: ['scale'],
    });
    const swarm = spawnCli([
      'agent',
      '--count',
      String(AGENTS),
      '--hub',
      (hubs[0] as HubProc).url,
      '--enroll-token',
      token,
      '--data',
      join(dir, 'swarm'),
      '--telemetry-interval',
      '4',
      '--probation-seconds',
      '5',
    ]);
    cleanups.push(() => swarm.kill());
    await swarm.waitForLog('agents ready', 240_000).catch((error: Error) => {
      throw new Error(`${error.message}\n${swarm.output.slice(-15).join('\n')}`);
    });
    await waitFor(
      async () =>
        (await api(1)<{ devices: { status: string }[] }>('GET', '/devices')).devices.filter(
          (d) => d.status === 'online',
        ).length === AGENTS,
      'all agents online',
      120_000,
      1000,
    );

    // A browser on replica 2 follows live events while replica 1 handles the rollout.
    const liveEvents: string[] = [];
    const live = await fetch(`${(hubs[2] as HubProc).url}/api/v1/live`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    const reader = (live.body as ReadableStream<Uint8Array>)
      .pipeThrough(new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>)
      .getReader();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
        if (done) return;
        liveEvents.push(value as string);
      }
    })();
    cleanups.push(() => reader.cancel());

    await api(1)(
      'PUT',
      '/models/scale/versions/1.0.0',
      mlpModel({ inputs: 8, hidden: [16], outputs: 3, softmax: true }),
    );
    const { id } = await api(1)<{ id: string }>('POST', '/rollouts', {
      model: 'scale',
      version: '1.0.0',
      target: { tags: ['scale'] },
      batches: ['1', '10%', '50%', '100%'],
      soakSeconds: 3,
    });
    // On a timeout, say where the rollout stood and what the hubs complained about.
    const explain = async (error: Error): Promise<never> => {
      const view = await api(1)<{ state: string; counts: unknown; events: { kind: string }[] }>(
        'GET',
        `/rollouts/${id}`,
      );
      const warnings = hubs.flatMap((h) => h.output.filter((l) => /"level":(40|50)/.test(l)).slice(-5));
      throw new Error(
        `${error.message}: ${JSON.stringify({ state: view.state, counts: view.counts, events: view.events.map((e) => e.kind) })}\n${warnings.join('\n')}\n${swarm.output
          .filter((l) => /"level":(40|50)/.test(l))
          .slice(-15)
          .join('\n')}`,
      );
    };
    await waitFor(
      async () => (await api(1)<{ currentBatch: number }>('GET', `/rollouts/${id}`)).currentBatch >= 2,
      'rollout at its third batch',
      120_000,
      250,
    ).catch(explain);
    // Kill the replica that holds the periodic work, if any, else replica 0.
    await (hubs[0] as HubProc).kill('SIGKILL');
    await waitFor(
      async () => (await api(1)<{ state: string }>('GET', `/rollouts/${id}`)).state === 'completed',
      'rollout completed without replica 0',
      180_000,
      500,
    ).catch(explain);
    // A survivor took over the dead replica's MQTT session (its share of the fleet's messages).
    // A replica counts as dead after 30 s without a heartbeat, so this may come after the rollout.
    await waitFor(
      () => hubs.slice(1).some((h) => h.output.some((l) => l.includes('adopted the MQTT session'))),
      'a survivor adopting the dead replica',
      90_000,
    );
    const rollout = await api(2)<{ counts: Record<string, number>; events: { kind: string }[] }>(
      'GET',
      `/rollouts/${id}`,
    );
    expect(rollout.counts).toEqual({ active: AGENTS });
    const kinds = rollout.events.map((e) => e.kind);
    expect(kinds.filter((k) => k === 'rollout.batch-started')).toHaveLength(3);
    expect(kinds.filter((k) => k === 'rollout.completed')).toHaveLength(1);
    await waitFor(() => liveEvents.some((e) => e.includes(id)), 'live rollout events on another replica');

    // Bring replica 0 back (as an orchestrator would): it takes its share again.
    hubs[0] = await replica(0);
    // Stop the agents cleanly (their outboxes drain), then count: every sample once.
    await swarm.kill('SIGTERM');
    const { devices } = await api(2)<{ devices: { id: string }[] }>('GET', '/devices');
    expect(devices).toHaveLength(AGENTS);
    let total = 0;
    for (const d of devices) {
      let seqs: number[] = [];
      await waitFor(
        async () => {
          seqs = (
            await api(d.id.length % 3)<{ samples: Sample[] }>('GET', `/devices/${d.id}/telemetry?limit=10000`)
          ).samples.map((s) => s.seq);
          return seqs.length > 0 && seqs.length === Math.max(...seqs);
        },
        `contiguous telemetry for ${d.id}`,
        60_000,
        500,
      );
      expect(seqs).toEqual(Array.from({ length: Math.max(...seqs) }, (_, i) => i + 1));
      total += seqs.length;
    }
    expect(total).toBeGreaterThan(AGENTS * 3);

    // The same answers from every replica.
    const views = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const list = (await api(i)<{ devices: Record<string, unknown>[] }>('GET', '/devices')).devices.map(
          ({ lastTelemetryAgeSeconds: _age, ...rest }) => rest,
        );
        return JSON.stringify({
          list,
          rollout: await api(i)('GET', `/rollouts/${id}`),
          models: await api(i)('GET', '/models'),
        });
      }),
    );
    expect(views[1]).toBe(views[0]);
    expect(views[2]).toBe(views[0]);
    console.log(
      `scale-out figures: ${JSON.stringify({ agents: AGENTS, telemetrySamples: total, replicaRssMb: await Promise.all(hubs.map((h) => h.rssMb().then(Math.round))) })}`,
    );
  }, 600_000);
});
