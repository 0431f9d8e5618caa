/**
 * A rollout to 60 simulated devices that all report "active" the moment their desired state
 * arrives, each once (as agents do: they report on change only). Every report must take effect:
 * before steps were queued per rollout, a step that overlapped another re-assigned devices that had
 * just reported, and most of the fleet stayed "assigned" for good.
 */
import { mlpModel } from '@edgefleet/converters';
import { encodeMessage, topics } from '@edgefleet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activeReport } from '../../packages/cli/src/bench/fanout.ts';
import { type BenchHub, startBenchHub } from '../../packages/cli/src/bench/hub.ts';
import {
  connectFleet,
  enrollFleet,
  pool,
  type SimulatedDevice,
} from '../../packages/cli/src/soak/simulated-fleet.ts';
import { waitFor } from '../../test/support/services.ts';

const DEVICES = 60;

describe('a burst of device reports', () => {
  let hub: BenchHub;
  let fleet: SimulatedDevice[] = [];
  beforeAll(async () => {
    hub = await startBenchHub();
    fleet = await connectFleet(await enrollFleet(hub.url, hub.adminToken, DEVICES));
  }, 120_000);
  afterAll(async () => {
    await pool(fleet, 20, (d) => d.client.endAsync());
    await hub?.stop();
  });

  it('takes every report once: the rollout completes with no device left behind', async () => {
    await hub.api(
      'PUT',
      '/models/m/versions/1.0.0',
      mlpModel({ inputs: 4, hidden: [8], outputs: 2, seed: 3 }),
    );
    await pool(fleet, 20, async (d) => {
      let answered = false;
      d.client.on('message', (topic, payload) => {
        if (topic !== topics.desired(d.deviceId) || payload.length === 0 || answered) return;
        const desired = JSON.parse(payload.toString()) as {
          revision: number;
          models: Record<string, { deploymentId: string; artifact: { sha256: string } }>;
        };
        const slot = desired.models.m;
        if (!slot) return;
        answered = true;
        void d.client.publishAsync(
          topics.reported(d.deviceId),
          encodeMessage(activeReport('m', slot.deploymentId, desired.revision, slot.artifact.sha256)),
          { qos: 1, retain: true },
        );
      });
      await d.client.subscribeAsync(topics.desired(d.deviceId), { qos: 1 });
    });
    const { id } = await hub.api<{ id: string }>('POST', '/rollouts', {
      model: 'm',
      version: '1.0.0',
      target: { tags: ['soak'] },
      batches: ['100%'],
      soakSeconds: 0,
    });
    const view = () => hub.api<{ state: string; counts: Record<string, number> }>('GET', `/rollouts/${id}`);
    await waitFor(async () => (await view()).state === 'completed', 'rollout completed', 60_000).catch(
      async (error: Error) => {
        throw new Error(`${error.message}: ${JSON.stringify((await view()).counts)}`);
      },
    );
    expect((await view()).counts).toEqual({ active: DEVICES });
  }, 120_000);
});
