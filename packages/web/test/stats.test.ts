import { type StatsMessage, statsMessage } from '@edgefleet/protocol';
import { describe, expect, it } from 'vitest';
import type { PredictionEvent } from '../src/session.ts';
import { basicAccumulator, createStatsReporter } from '../src/stats.ts';

const event = (latency_ms: number, values: number[], error = false): PredictionEvent => ({
  inputs: {},
  latency_ms,
  ...(error
    ? { error: { code: 'WEB_RUN_FAILED', message: 'boom' } }
    : { outputs: { y: { dtype: 'float32', shape: [values.length], data: Float32Array.from(values) } } }),
});

function clockFrom(start: number) {
  let t = start;
  return {
    now: () => new Date(t),
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('stats reporter', () => {
  it('sends one numbered window per flush, in the shape agents publish on MQTT', async () => {
    const sent: StatsMessage[] = [];
    const clock = clockFrom(Date.parse('2026-03-01T10:00:00Z'));
    const reporter = createStatsReporter({
      model: 'm',
      version: '1.2.0',
      clock: clock.now,
      send: async (message) => {
        sent.push(statsMessage.parse(message));
      },
    });
    reporter.observe(event(5, [1, 2]));
    reporter.observe(event(7, [3, Number.NaN]));
    reporter.observe(event(9, [], true));
    clock.advance(60_000);
    expect(await reporter.flush()).toEqual({ sent: 1, pending: 0 });
    reporter.observe(event(4, [0]));
    clock.advance(60_000);
    await reporter.flush();
    expect(sent.map((m) => m.windows.map((w) => w.seq))).toEqual([[1], [2]]);
    const first = sent[0]?.windows[0];
    expect(first).toMatchObject({
      model: 'm',
      version: '1.2.0',
      start: '2026-03-01T10:00:00.000Z',
      end: '2026-03-01T10:01:00.000Z',
    });
    expect(first?.window).toMatchObject({
      requests: 3,
      errors: 1,
      latency_p50_ms: 7,
      latency_max_ms: 9,
      outputs: { y: { count: 3, sum: 6, sum_sq: 14, min: 1, max: 3, non_finite: 1 } },
    });
    expect(sent[1]?.windows[0]?.start).toBe(first?.end);
  });

  it('sends nothing for an empty window and keeps no number for it', async () => {
    const sent: StatsMessage[] = [];
    const reporter = createStatsReporter({
      model: 'm',
      version: '1.0.0',
      send: async (m) => void sent.push(m),
    });
    expect(await reporter.flush()).toEqual({ sent: 0, pending: 0 });
    reporter.observe(event(1, [1]));
    await reporter.flush();
    expect(sent[0]?.windows[0]?.seq).toBe(1);
  });

  it('keeps windows while the hub is unreachable and sends them in order later, dropping the oldest past the limit', async () => {
    let up = false;
    const sent: number[] = [];
    const reporter = createStatsReporter({
      model: 'm',
      version: '1.0.0',
      maxPending: 3,
      send: async (m) => {
        if (!up) throw new Error('offline');
        sent.push(...m.windows.map((w) => w.seq));
      },
    });
    for (let i = 0; i < 5; i++) {
      reporter.observe(event(1, [i]));
      const result = await reporter.flush();
      expect(result.sent).toBe(0);
      expect(result.error).toMatch(/offline/);
    }
    expect(reporter.pending).toBe(3);
    expect(reporter.dropped).toBe(2);
    up = true;
    expect(await reporter.flush()).toEqual({ sent: 3, pending: 0 });
    expect(sent).toEqual([3, 4, 5]);
  });

  it('continues the sequence from storage so a reloaded page never reuses a number', async () => {
    let stored = 41;
    const sent: number[] = [];
    const seq = {
      get: () => stored,
      set: (v: number) => {
        stored = v;
      },
    };
    const reporter = createStatsReporter({
      model: 'm',
      version: '1.0.0',
      seq,
      send: async (m) => void sent.push(...m.windows.map((w) => w.seq)),
    });
    reporter.observe(event(1, [1]));
    await reporter.flush();
    expect(sent).toEqual([42]);
    expect(stored).toBe(42);
  });

  it('serializes concurrent flushes so no window is sent twice', async () => {
    const sent: number[] = [];
    const reporter = createStatsReporter({
      model: 'm',
      version: '1.0.0',
      send: async (m) => {
        await Promise.resolve();
        sent.push(...m.windows.map((w) => w.seq));
      },
    });
    reporter.observe(event(1, [1]));
    const a = reporter.flush();
    reporter.observe(event(1, [2]));
    const b = reporter.flush();
    await Promise.all([a, b]);
    expect(sent).toEqual([1, 2]);
  });

  it('keeps a basic window small', () => {
    const acc = basicAccumulator();
    for (let i = 0; i < 10_000; i++) acc.add(event(i % 50, [Math.sin(i), Math.cos(i)]));
    expect(JSON.stringify(acc.take()).length).toBeLessThan(1000);
    expect(acc.count).toBe(0);
  });
});
