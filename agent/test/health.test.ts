/** Health readings for telemetry, and sequence numbers that keep increasing across restarts. */
import { mkdtemp, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { telemetrySample } from '@edgefleet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SequenceCounter } from '../src/state/sequence.ts';
import { readHealth } from '../src/telemetry.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ef-health-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('health', () => {
  it('reads CPU, memory, the data dir’s disk, temperature or null, and uptime', async () => {
    const health = await readHealth(dir);
    expect(health.mem_total_mb).toBeGreaterThan(0);
    expect(health.mem_used_mb).toBeGreaterThan(0);
    expect(health.mem_used_mb).toBeLessThanOrEqual(health.mem_total_mb);
    expect(health.rss_mb).toBeGreaterThan(0);
    expect(health.disk_total_mb).toBeGreaterThan(0);
    expect(health.disk_free_mb).toBeLessThanOrEqual(health.disk_total_mb);
    expect(health.uptime_s).toBeGreaterThan(0);
    expect(health.temp_c === null || typeof health.temp_c === 'number').toBe(true);
    // Valid as the hub will check it.
    expect(telemetrySample.safeParse({ seq: 1, ts: new Date().toISOString(), ...health }).success).toBe(true);
  });

  it('measures CPU load between samples and finds the disk of the data dir', async () => {
    await readHealth(dir);
    const busyUntil = Date.now() + 200;
    while (Date.now() < busyUntil); // keep one core busy between the two readings
    const health = await readHealth(dir);
    expect(health.cpu_load_pct).toBeGreaterThan(0);
    expect(health.cpu_load_pct).toBeLessThanOrEqual(100);
    const fs = await statfs(dir);
    expect(health.disk_total_mb).toBeCloseTo((fs.blocks * fs.bsize) / 1024 / 1024, 0);
  });

  it('numbers samples strictly increasing, across restarts, per stream', async () => {
    const first = await SequenceCounter.open(dir);
    const a = [await first.next('telemetry'), await first.next('telemetry'), await first.next('stats')];
    const second = await SequenceCounter.open(dir);
    const b = [await second.next('telemetry'), await second.next('stats')];
    expect(a).toEqual([1, 2, 1]);
    expect(b).toEqual([3, 2]);
  });
});
