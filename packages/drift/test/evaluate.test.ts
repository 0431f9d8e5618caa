/**
 * Drift decisions on simulated traffic through the real profile builder and device accumulator:
 * held-out data from the reference distribution stays ok, and the three shifts of issue 6 (a
 * feature's scale, a missing feature, the class balance) are found within three windows, naming
 * the right variables. The end-to-end version over MQTT is in test/drift-replay.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  buildReferenceProfile,
  createWindowAccumulator,
  decodeWindow,
  evaluateFleet,
  evaluateScope,
  type ReferenceRow,
  seededRandom,
  type WindowStats,
} from '../src/index.ts';
import { ioSpecs, LABELS, makeRows, type Transform } from './support.ts';

const profile = buildReferenceProfile({ ...ioSpecs, rows: makeRows(10_000, 1), labels: LABELS });
const M = 200;

function windowsOf(rows: readonly ReferenceRow[], size = M): WindowStats[] {
  const out: WindowStats[] = [];
  for (let start = 0; start + size <= rows.length; start += size) {
    const acc = createWindowAccumulator(profile);
    for (const row of rows.slice(start, start + size)) acc.add({ ...row, latencyMs: 2 });
    out.push(decodeWindow(JSON.parse(JSON.stringify(acc.take()))));
  }
  return out;
}

const inputNames = profile.variables.filter((v) => v.source.tensor === 'input').map((v) => v.name);

/** The first of three windows that flags `expected`, and every input variable named on the way. */
function detect(transform: Transform | undefined, rows?: ReferenceRow[]) {
  const ws = windowsOf(rows ?? makeRows(3 * M, 4242, transform ? { transform } : {})).slice(0, 3);
  const evaluations = ws.map((w) => evaluateScope(profile, w));
  const namedInputs = new Set(evaluations.flatMap((e) => e.drifted.filter((n) => inputNames.includes(n))));
  return { evaluations, namedInputs };
}

describe('no drift', () => {
  it('held-out windows of 200 predictions raise fewer than 1 % false alarms (500 windows)', () => {
    const ws = windowsOf(makeRows(500 * M, 99));
    const alarms = ws.map((w) => evaluateScope(profile, w)).filter((e) => e.status !== 'ok');
    expect(ws).toHaveLength(500);
    expect(alarms.length / ws.length).toBeLessThan(0.01);
  });

  it('says insufficient-data below the minimum window instead of guessing', () => {
    const [w] = windowsOf(makeRows(50, 98), 50);
    const e = evaluateScope(profile, w!);
    expect(e.status).toBe('insufficient-data');
    expect(e.variables.every((v) => v.status === 'insufficient-data')).toBe(true);
  });

  it('reports the statistics a dashboard needs', () => {
    const [w] = windowsOf(makeRows(1000, 97), 1000);
    const e = evaluateScope(profile, w!);
    const x0 = e.variables.find((v) => v.name === 'x[0]')!;
    expect(x0.meanShift!).toBeLessThan(0.2);
    expect(x0.stdRatio!).toBeGreaterThan(0.85);
    expect(x0.wasserstein!).toBeLessThan(0.1);
    expect(x0.ks!.d).toBeLessThan(0.06);
    expect(x0.reference.proportions).toHaveLength(x0.current.proportions.length);
    expect(e.latencyP50Ms).toBeGreaterThan(1);
    expect(e.latencyP50Ms).toBeLessThan(3);
    expect(e.errorRate).toBe(0);
  });
});

describe('shifts are found within three windows, naming the right variables', () => {
  it('a feature whose scale changes (×2)', () => {
    const { evaluations, namedInputs } = detect((f) => f.map((v, i) => (i === 0 ? 2 * v : v)));
    const first = evaluations.findIndex((e) => e.drifted.includes('x[0]'));
    expect(first).toBeGreaterThanOrEqual(0);
    expect(evaluations[first]!.status).not.toBe('ok');
    expect([...namedInputs]).toEqual(['x[0]']);
    const x0 = evaluations[first]!.variables.find((v) => v.name === 'x[0]')!;
    expect(x0.stdRatio!).toBeGreaterThan(1.6);
  });

  it('a feature that goes missing (NaN)', () => {
    const { evaluations, namedInputs } = detect((f) => f.map((v, i) => (i === 2 ? Number.NaN : v)));
    expect(evaluations[0]!.status).toBe('drift');
    expect([...namedInputs]).toEqual(['x[2]']);
    expect(evaluations[0]!.variables.find((v) => v.name === 'x[2]')!.invalidRate).toBe(1);
  });

  it('a feature that goes missing and is imputed with 0', () => {
    const { evaluations, namedInputs } = detect((f) => f.map((v, i) => (i === 2 ? 0 : v)));
    expect(evaluations.some((e) => e.drifted.includes('x[2]'))).toBe(true);
    expect([...namedInputs]).toEqual(['x[2]']);
  });

  it('a class balance that moves (cats become rare)', () => {
    const pool = makeRows(8000, 4343).filter((r, i) => {
      const p = r.outputs.probs!.data as Float32Array;
      return p.indexOf(Math.max(...p)) !== 0 || i % 5 === 0;
    });
    const { evaluations } = detect(undefined, pool);
    const hit = evaluations.find((e) => e.drifted.includes('probs.class'));
    expect(hit).toBeDefined();
    const cls = hit!.variables.find((v) => v.name === 'probs.class')!;
    expect(cls.linf?.category).toBe('cat');
  });
});

describe('fleet', () => {
  it('flags the one device whose data shifted, and raises the version at a 20 % device share', () => {
    const devices = new Map<string, WindowStats[]>();
    for (let d = 0; d < 5; d++) {
      const transform: Transform | undefined =
        d === 3 ? (f) => f.map((v, i) => (i === 4 ? v + 6 : v)) : undefined;
      devices.set(`dev-${d}`, windowsOf(makeRows(2 * M, 700 + d, transform ? { transform } : {})).reverse());
    }
    const result = evaluateFleet(profile, devices);
    const flagged = result.devices.filter((d) => d.status !== 'ok').map((d) => d.deviceId);
    expect(flagged).toEqual(['dev-3']);
    expect(result.driftingDeviceShare).toBeCloseTo(0.2, 12);
    expect(result.status).not.toBe('ok');
    expect(result.variables).toContain('x[4]');
    expect(result.fleet.n).toBe(5 * M);
  });

  it('merges a device’s small windows until they reach the minimum', () => {
    const small = windowsOf(makeRows(300, 800), 50).reverse();
    const result = evaluateFleet(profile, new Map([['slow', small]]));
    expect(result.devices[0]!.windows).toBe(4);
    expect(result.devices[0]!.evaluation.n).toBe(200);
    expect(result.status).toBe('ok');
  });
});

describe('label-free performance estimate (CBPE)', () => {
  it('tracks the reference accuracy on held-out data and drops when the inputs turn ambiguous', () => {
    // Ground truth drawn from the model's own probabilities: a perfectly calibrated classifier.
    const draw = seededRandom(7);
    const withTargets = (rows: ReferenceRow[]) =>
      rows.map((r) => {
        const p = r.outputs.probs!.data as Float32Array;
        const u = draw();
        return { ...r, target: u < p[0]! ? 0 : u < p[0]! + p[1]! ? 1 : 2 };
      });
    const calibrated = buildReferenceProfile({
      ...ioSpecs,
      rows: withTargets(makeRows(10_000, 5)),
      labels: LABELS,
    });
    const acc = createWindowAccumulator(calibrated);
    for (const row of makeRows(2000, 6)) acc.add({ ...row, latencyMs: 1 });
    const same = evaluateScope(calibrated, decodeWindow(acc.take())).performance!;
    expect(same.status).toBe('ok');
    expect(Math.abs(same.estimatedAccuracy - same.referenceAccuracy)).toBeLessThan(0.03);
    // Features pulled toward the point where all logits tie: the model grows unsure.
    const blurred = makeRows(2000, 8, {
      transform: (f) => f.map((v, i) => (i === 5 ? 50 + (v - 50) * 0.2 : v * 0.2)),
    });
    for (const row of blurred) acc.add({ ...row, latencyMs: 1 });
    const worse = evaluateScope(calibrated, decodeWindow(acc.take())).performance!;
    expect(worse.estimatedAccuracy).toBeLessThan(same.estimatedAccuracy - 0.03);
    expect(worse.status).toBe('warning');
  });
});
