/**
 * Drift replay through the production path without the network: the agent's statistics collector
 * closes windows of 200 predictions, each window travels as the JSON the agent publishes, and the
 * hub's evaluation decides per round. 2,000 held-out windows (10 devices × 200 rounds) must raise
 * fewer than 1 % false alarms, per device and per fleet decision. The same path over MQTT with
 * real agent processes is test/e2e/drift.test.ts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildReferenceProfile, type ReferenceProfile } from '@edgefleet/drift';
import type { StatsWindowEnvelope } from '@edgefleet/protocol';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DriftStatsCollector } from '../../agent/src/drift-stats.ts';
import type { LoadedModel } from '../../agent/src/inference/loaded-models.ts';
import { ioSpecs, LABELS, makeRows } from '../../packages/drift/test/support.ts';
import { evaluateWindows, type StoredWindow } from '../src/drift/evaluate.ts';

const M = 200;
const DEVICES = 10;
const ROUNDS = 200;

describe('drift replay: agent windows → hub decisions', () => {
  let dir: string;
  let profile: ReferenceProfile;
  let profilePath: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-drift-replay-'));
    profile = buildReferenceProfile({ ...ioSpecs, rows: makeRows(10_000, 1), labels: LABELS });
    profilePath = join(dir, 'reference-profile.json');
    await writeFile(profilePath, JSON.stringify(profile));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  /** A device: the real collector, fed through the observer interface, windows as wire JSON. */
  async function device(name: string) {
    const sent: StatsWindowEnvelope[] = [];
    let seq = 0;
    const collector = new DriftStatsCollector({
      logger: pino({ level: 'silent' }),
      maxCount: M,
      windowMs: 3_600_000,
      profilePath: () => profilePath,
      emit: async (w) => {
        sent.push(JSON.parse(JSON.stringify({ seq: ++seq, ...w })));
      },
    });
    const model = {
      slot: 'clf',
      entry: { name: 'clf', version: '1.0.0' },
      manifest: { referenceProfile: { file: 'reference-profile.json' } },
    } as unknown as LoadedModel;
    await collector.activated(model);
    return {
      name,
      sent,
      collector,
      /** One window's worth of predictions from `seed`, one call per prediction. */
      async window(seed: number, transform?: (f: number[]) => number[]) {
        for (const row of makeRows(M, seed, transform ? { transform } : {}))
          collector.observe({ model: 'clf', version: '1.0.0', ...row, latencyMs: 1.5, error: null } as never);
        await collector.flush();
        return sent.at(-1)!;
      },
    };
  }

  it('raises fewer than 1 % false alarms over 2,000 held-out windows', async () => {
    const devices = await Promise.all(Array.from({ length: DEVICES }, (_, i) => device(`d${i}`)));
    let fleetAlarms = 0;
    let deviceAlarms = 0;
    let decisions = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const newest: StoredWindow[] = [];
      for (const [i, d] of devices.entries()) {
        const w = await d.window(10_000 + round * DEVICES + i);
        newest.push({ deviceId: d.name, window: w.window });
      }
      const result = evaluateWindows(profile, newest);
      expect(result.windows).toMatchObject({ used: DEVICES, skipped: 0, devices: DEVICES });
      if (result.status !== 'ok') fleetAlarms++;
      for (const d of result.devices) {
        decisions++;
        if (d.status !== 'ok') deviceAlarms++;
      }
    }
    const windows = devices.reduce((s, d) => s + d.sent.length, 0);
    expect(windows).toBe(DEVICES * ROUNDS);
    expect(devices.every((d) => d.sent.every((w, i) => w.seq === i + 1))).toBe(true);
    console.log(
      `drift replay: ${windows} held-out windows; false alarms ${deviceAlarms}/${decisions} device decisions, ${fleetAlarms}/${ROUNDS} fleet decisions`,
    );
    expect(deviceAlarms / decisions).toBeLessThan(0.01);
    expect(fleetAlarms / ROUNDS).toBeLessThan(0.01);
  }, 120_000);

  it('names the scaled feature within three windows, on the devices that see it', async () => {
    const devices = await Promise.all(Array.from({ length: 4 }, (_, i) => device(`s${i}`)));
    const scaled = (f: number[]) => f.map((v, i) => (i === 0 ? 2 * v : v));
    let found = -1;
    for (let round = 0; round < 3 && found < 0; round++) {
      const newest: StoredWindow[] = [];
      for (const [i, d] of devices.entries()) {
        // Half the fleet sees the shift.
        const w = await d.window(50_000 + round * 10 + i, i < 2 ? scaled : undefined);
        newest.push({ deviceId: d.name, window: w.window });
      }
      const result = evaluateWindows(profile, newest);
      if (result.variables.includes('x[0]')) {
        found = round;
        const flagged = result.devices.filter((d) => d.status !== 'ok').map((d) => d.deviceId);
        expect(flagged.sort()).toEqual(['s0', 's1']);
        expect(result.variables.filter((v) => v.startsWith('x['))).toEqual(['x[0]']);
      }
    }
    expect(found).toBeGreaterThanOrEqual(0);
  });

  it('names a feature that arrives as NaN, though the agent counts each such prediction as an error', async () => {
    const d = await device('nan');
    for (const row of makeRows(M, 91, { transform: (f) => f.map((v, i) => (i === 2 ? Number.NaN : v)) }))
      d.collector.observe({
        model: 'clf',
        version: '1.0.0',
        ...row,
        latencyMs: 1,
        error: new Error('output contains NaN or Inf'),
      } as never);
    await d.collector.flush();
    const result = evaluateWindows(profile, [{ deviceId: 'nan', window: d.sent.at(-1)!.window }]);
    expect(result.status).toBe('drift');
    expect(result.variables.filter((v) => v.startsWith('x['))).toEqual(['x[2]']);
    expect(result.fleet.errorRate).toBe(1);
    expect(result.fleet.variables.find((v) => v.name === 'x[2]')!.invalidRate).toBe(1);
  });

  it('skips windows of another profile or shape, and counts them', async () => {
    const d = await device('odd');
    const good = await d.window(77);
    const result = evaluateWindows(profile, [
      { deviceId: 'browser', window: { kind: 'edgefleet-web-basic', requests: 3 } },
      { deviceId: 'odd', window: null },
      { deviceId: 'odd', window: good.window },
    ]);
    expect(result.windows).toEqual({ received: 3, used: 1, skipped: 2, devices: 1 });
  });

  it('does not count a model without a reference profile', async () => {
    const sent: unknown[] = [];
    const collector = new DriftStatsCollector({
      logger: pino({ level: 'silent' }),
      profilePath: () => join(dir, 'missing.json'),
      emit: async (w) => void sent.push(w),
    });
    await collector.activated({
      slot: 'plain',
      entry: { name: 'plain', version: '1.0.0' },
      manifest: {},
    } as unknown as LoadedModel);
    collector.observe({
      model: 'plain',
      version: '1.0.0',
      ...makeRows(1, 3)[0]!,
      latencyMs: 1,
      error: null,
    } as never);
    await collector.flush();
    expect(sent).toEqual([]);
  });
});
