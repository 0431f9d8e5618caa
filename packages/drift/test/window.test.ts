import { statsMessage } from '@edgefleet/protocol';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildReferenceProfile,
  createWindowAccumulator,
  DriftError,
  decodeWindow,
  encodeWindow,
  LATENCY_BOUNDS_MS,
  latencyBucket,
  latencyQuantile,
  mergeWindows,
  type ReferenceRow,
} from '../src/index.ts';
import { float32Toward as toward } from '../src/window/codec.ts';
import { ioSpecs, LABELS, makeRows } from './support.ts';

const profile = buildReferenceProfile({ ...ioSpecs, rows: makeRows(3000, 11), labels: LABELS });

/** A model with 20 numeric features and a scalar output: the size budget's case. */
function twentyVariableProfile() {
  const rows: ReferenceRow[] = makeRows(2000, 12).map((r) => {
    const x = r.inputs.x!.data as Float32Array;
    const wide = new Float32Array(19);
    for (let i = 0; i < 19; i++) wide[i] = x[i % 8]! * (1 + i / 10);
    return {
      inputs: { x: { dtype: 'float32', shape: [1, 19], data: wide } },
      outputs: { y: { dtype: 'float32', shape: [1, 1], data: new Float32Array([x[0]! + x[1]!]) } },
    };
  });
  const io = {
    inputs: [{ name: 'x', shape: ['batch', 19], dtype: 'float32' }],
    outputs: [{ name: 'y', shape: ['batch', 1], dtype: 'float32' }],
  };
  return { profile: buildReferenceProfile({ ...io, rows }), rows };
}

function envelopeBytes(window: unknown): number {
  const message = statsMessage.parse({
    windows: [
      {
        seq: 123456,
        model: 'fraud-detector',
        version: '1.12.3',
        start: '2026-11-22T13:00:00.000Z',
        end: '2026-11-22T13:01:00.000Z',
        window,
      },
    ],
  });
  return new TextEncoder().encode(JSON.stringify(message)).length;
}

describe('window payload size', () => {
  const { profile: p20, rows } = twentyVariableProfile();
  it('has 20 variables', () => expect(p20.variables).toHaveLength(20));
  for (const predictions of [200, 1000, 10_000])
    it(`keeps a ${predictions}-prediction window of 20 variables, in its MQTT message, under 2 KB`, () => {
      const acc = createWindowAccumulator(p20);
      for (let i = 0; i < predictions; i++) acc.add({ ...rows[i % rows.length]!, latencyMs: 0.5 + (i % 37) });
      const bytes = envelopeBytes(acc.take());
      console.info(`window message, 20 variables, ${predictions} predictions: ${bytes} bytes`);
      expect(bytes).toBeLessThan(2048);
    });
});

describe('encoding', () => {
  it('round-trips counts, moments and CBPE sums; min/max are rounded outward to float32', () => {
    const acc = createWindowAccumulator(profile);
    for (const row of makeRows(500, 13)) acc.add({ ...row, latencyMs: 3 });
    acc.add({ inputs: {}, outputs: null, latencyMs: 5, error: new Error('boom') });
    const before = structuredClone(acc.peek());
    const decoded = decodeWindow(JSON.parse(JSON.stringify(acc.take())));
    expect(decoded.n).toBe(500);
    expect(decoded.errors).toBe(1);
    expect(decoded.latency).toEqual(before.latency);
    decoded.vars.forEach((v, i) => {
      const b = before.vars[i]!;
      expect(v.counts).toEqual(b.counts);
      if (b.sum === undefined) return;
      expect(v.sum).toBe(b.sum);
      expect(v.sumSq).toBe(b.sumSq);
      expect(v.min).toBeLessThanOrEqual(b.min!);
      expect(v.max).toBeGreaterThanOrEqual(b.max!);
      expect(Math.abs(v.min! - b.min!)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(b.min!)));
    });
    expect(acc.count).toBe(0);
  });

  it('rounds toward the requested side for any double', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true, min: -3e38, max: 3e38 }), (x) => {
        expect(toward(x, 'down')).toBeLessThanOrEqual(x);
        expect(toward(x, 'up')).toBeGreaterThanOrEqual(x);
      }),
    );
    expect(toward(0.1, 'down')).toBeLessThan(0.1);
    expect(toward(0.1, 'up')).toBeGreaterThan(0.1);
  });

  it('refuses any garbage with DRIFT_WINDOW_INVALID and nothing else', () => {
    const valid = encodeWindow(
      mergeWindows([decodeWindow(encodeWindow(createWindowAccumulator(profile).peek()))]),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.record({
            ...Object.fromEntries(Object.entries(valid).map(([k, v]) => [k, fc.constant(v)])),
            vars: fc.array(fc.base64String()),
          }),
          fc.string().map((s) => ({ ...valid, latency: s })),
          fc
            .uint8Array({ maxLength: 40 })
            .map((b) => ({ ...valid, vars: [Buffer.from(b).toString('base64url')] })),
        ),
        (input) => {
          try {
            decodeWindow(input);
          } catch (error) {
            expect(error).toBeInstanceOf(DriftError);
            expect((error as DriftError).code).toBe('DRIFT_WINDOW_INVALID');
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('counting', () => {
  it('counts NaN, infinity, a missing tensor and a wrongly sized one as invalid', () => {
    const acc = createWindowAccumulator(profile);
    const [row] = makeRows(1, 14);
    const x = Float32Array.from(row!.inputs.x!.data as Float32Array);
    x[0] = Number.NaN;
    x[1] = Number.POSITIVE_INFINITY;
    acc.add({ inputs: { x: { shape: [1, 8], data: x } }, outputs: row!.outputs, latencyMs: 1 });
    acc.add({ inputs: {}, outputs: row!.outputs, latencyMs: 1 });
    acc.add({ inputs: { x: { shape: [1, 5], data: new Float32Array(5) } }, outputs: null, latencyMs: 1 });
    const w = acc.peek();
    const idx = (name: string) => profile.variables.findIndex((v) => v.name === name);
    expect(w.n).toBe(3);
    expect(w.vars[idx('x[0]')]!.counts[0]).toBe(3);
    expect(w.vars[idx('x[1]')]!.counts[0]).toBe(3);
    expect(w.vars[idx('x[2]')]!.counts[0]).toBe(2);
    expect(w.vars[idx('probs.class')]!.counts[0]).toBe(1);
  });

  it('counts every sample of a batch', () => {
    const acc = createWindowAccumulator(profile);
    for (const row of makeRows(10, 15, { batch: 16 })) acc.add({ ...row, latency_ms: 2 });
    expect(acc.count).toBe(160);
    expect(acc.calls).toBe(10);
    expect(acc.peek().vars[0]!.counts.reduce((a, b) => a + b, 0)).toBe(160);
  });

  it('merging windows equals counting everything in one window', () => {
    const data = makeRows(900, 16);
    const parts = [data.slice(0, 100), data.slice(100, 450), data.slice(450)].map((chunk) => {
      const acc = createWindowAccumulator(profile);
      for (const row of chunk) acc.add({ ...row, latencyMs: 4 });
      return decodeWindow(acc.take());
    });
    const whole = createWindowAccumulator(profile);
    for (const row of data) whole.add({ ...row, latencyMs: 4 });
    const one = whole.peek();
    const merged = mergeWindows(parts);
    const reversed = mergeWindows([...parts].reverse());
    expect(merged.n).toBe(900);
    merged.vars.forEach((v, i) => {
      expect(v.counts).toEqual(one.vars[i]!.counts);
      expect(reversed.vars[i]!.counts).toEqual(v.counts);
      if (v.sum !== undefined) expect(v.sum).toBeCloseTo(one.vars[i]!.sum!, 6);
    });
    expect(merged.latency).toEqual(one.latency);
  });

  it('refuses to merge windows of different profiles', () => {
    const other = buildReferenceProfile({ ...ioSpecs, rows: makeRows(300, 17), labels: LABELS });
    const a = decodeWindow(encodeWindow(createWindowAccumulator(profile).peek()));
    const b = decodeWindow(encodeWindow(createWindowAccumulator(other).peek()));
    expect(() => mergeWindows([a, b])).toThrow(expect.objectContaining({ code: 'DRIFT_PROFILE_MISMATCH' }));
  });
});

describe('latency histogram', () => {
  it('puts each latency in the first bucket whose bound is at least it', () => {
    expect(latencyBucket(0.1)).toBe(0);
    expect(latencyBucket(0.25)).toBe(0);
    expect(latencyBucket(0.26)).toBe(1);
    expect(latencyBucket(1e9)).toBe(LATENCY_BOUNDS_MS.length);
    for (const ms of [0.7, 3, 12, 250, 4000]) {
      const b = latencyBucket(ms);
      expect(LATENCY_BOUNDS_MS[b]!).toBeGreaterThanOrEqual(ms);
      expect(LATENCY_BOUNDS_MS[b - 1]!).toBeLessThan(ms);
    }
  });
  it('reads quantiles within a bucket width', () => {
    const counts = new Array(LATENCY_BOUNDS_MS.length + 1).fill(0);
    for (let i = 1; i <= 100; i++) counts[latencyBucket(i)]++;
    const p95 = latencyQuantile(counts, 0.95)!;
    expect(p95).toBeGreaterThan(95 / Math.SQRT2);
    expect(p95).toBeLessThan(95 * Math.SQRT2);
  });
});
