import { describe, expect, it } from 'vitest';
import {
  buildReferenceProfile,
  createWindowAccumulator,
  type DriftError,
  type NumericVariable,
  parseReferenceProfile,
  type ReferenceRow,
} from '../src/index.ts';
import { ioSpecs, LABELS, makeRows } from './support.ts';

const rows = makeRows(5000, 1);

function catchError(fn: () => unknown): DriftError {
  try {
    fn();
  } catch (error) {
    return error as DriftError;
  }
  throw new Error('expected an error');
}

describe('buildReferenceProfile on a tabular classifier', () => {
  const profile = buildReferenceProfile({ ...ioSpecs, rows, labels: LABELS });

  it('finds the classifier and names a variable per output signal and per input feature', () => {
    expect(profile.task).toBe('classification');
    expect(profile.rows).toBe(5000);
    expect(profile.classifier).toMatchObject({ output: 'probs', classes: 3, labels: LABELS, softmax: false });
    expect(profile.variables.map((v) => v.name)).toEqual([
      'probs.class',
      'probs.confidence',
      'probs.p[cat]',
      'probs.p[dog]',
      'probs.p[bird]',
      ...Array.from({ length: 8 }, (_, i) => `x[${i}]`),
    ]);
  });

  it('bins continuous features into ten nearly equal-mass bins with empty guards', () => {
    const x0 = profile.variables.find((v) => v.name === 'x[0]') as NumericVariable;
    expect(x0.edges).toHaveLength(9);
    expect(x0.counts[0]).toBe(0); // invalid
    expect(x0.counts[1]).toBe(0); // below min
    expect(x0.counts.at(-1)).toBe(0); // above max
    for (const c of x0.counts.slice(2, -1)) expect(c).toBe(500);
    expect(x0.mean).toBeCloseTo(0, 1);
    expect(x0.std).toBeCloseTo(1, 1);
    expect(x0.quantiles[2]).toBeCloseTo(0, 1);
  });

  it('collapses tied quantiles of a binary feature to its two real values and keeps true counts', () => {
    const x3 = profile.variables.find((v) => v.name === 'x[3]') as NumericVariable;
    expect(x3.edges).toEqual([1]);
    expect(x3.min).toBe(0);
    expect(x3.max).toBe(1);
    const [zeros, ones] = x3.counts.slice(2, 4) as [number, number];
    expect(zeros + ones).toBe(5000);
    expect(ones / 5000).toBeCloseTo(0.3, 1);
  });

  it('reproduces its own reference counts exactly when the device counts the same rows (research §16)', () => {
    const acc = createWindowAccumulator(profile);
    for (const row of rows) acc.add({ ...row, latencyMs: 1 });
    const w = acc.peek();
    for (const [i, v] of profile.variables.entries()) expect(w.vars[i]!.counts, v.name).toEqual(v.counts);
  });

  it('records the class distribution and confidence quantiles', () => {
    const cls = profile.variables[0]!;
    expect(cls.kind).toBe('categorical');
    if (cls.kind !== 'categorical') return;
    expect(cls.categories).toEqual(LABELS);
    expect(cls.counts.slice(1, 4).reduce((a, b) => a + b, 0)).toBe(5000);
    const q = profile.classifier!.confidence.quantiles;
    expect(q[0]).toBeGreaterThanOrEqual(1 / 3);
    expect([...q]).toEqual([...q].sort((a, b) => a - b));
  });

  it('is deterministic and survives a JSON round trip with its hash', () => {
    const again = buildReferenceProfile({ ...ioSpecs, rows, labels: LABELS });
    expect(again.hash).toBe(profile.hash);
    const text = JSON.stringify(profile);
    expect(parseReferenceProfile(text)).toEqual(profile);
    expect(parseReferenceProfile(new TextEncoder().encode(text)).hash).toBe(profile.hash);
    expect(text.length).toBeLessThan(8000);
  });
});

describe('classifier details', () => {
  it('detects logits and applies softmax when labels say the output is a classifier', () => {
    const logitRows: ReferenceRow[] = makeRows(300, 2).map((r) => {
      const p = r.outputs.probs!.data as Float32Array;
      return { ...r, outputs: { probs: { ...r.outputs.probs!, data: p.map((v) => Math.log(v) + 2) } } };
    });
    const profile = buildReferenceProfile({ ...ioSpecs, rows: logitRows, labels: LABELS });
    expect(profile.classifier?.softmax).toBe(true);
    const conf = profile.variables[1] as NumericVariable;
    expect(conf.max).toBeLessThanOrEqual(1);
    expect(conf.min).toBeGreaterThanOrEqual(1 / 3 - 1e-9);
  });

  it('fits a calibrator and the reference accuracy from targets', () => {
    const labelled = makeRows(2000, 3).map((r) => {
      const p = r.outputs.probs!.data as Float32Array;
      const top = p.indexOf(Math.max(...p));
      return { ...r, target: LABELS[top]! };
    });
    const profile = buildReferenceProfile({ ...ioSpecs, rows: labelled, labels: LABELS });
    expect(profile.classifier?.accuracy).toBe(1);
    expect(profile.classifier?.calibrator?.y.every((y) => y === 1)).toBe(true);
  });

  it('keeps the top classes of a large classifier and counts the rest as other', () => {
    const K = 120;
    const big: ReferenceRow[] = Array.from({ length: 600 }, (_, i) => {
      const probs = new Float32Array(K).fill(0.1 / (K - 1));
      probs[(i * 7) % K] = 0.9;
      return {
        inputs: { x: { dtype: 'float32', shape: [1, 8], data: new Float32Array(8).fill(i) } },
        outputs: { probs: { dtype: 'float32', shape: [1, K], data: probs } },
      };
    });
    const profile = buildReferenceProfile(
      { inputs: ioSpecs.inputs, outputs: [{ name: 'probs', shape: [1, K], dtype: 'float32' }], rows: big },
      { maxCategories: 50 },
    );
    const cls = profile.variables[0]!;
    if (cls.kind !== 'categorical') throw new Error('expected categorical');
    expect(cls.categories).toHaveLength(50);
    expect(cls.classIndex).toHaveLength(50);
    expect(cls.counts.reduce((a, b) => a + b, 0)).toBe(600);
    expect(cls.counts.at(-1)).toBe(600 - 50 * 5);
  });
});

describe('image inputs', () => {
  it('profiles per-channel brightness and contrast for an NCHW image', () => {
    const rows: ReferenceRow[] = Array.from({ length: 200 }, (_, i) => {
      const data = new Float32Array(3 * 16 * 16);
      for (let c = 0; c < 3; c++) for (let p = 0; p < 256; p++) data[c * 256 + p] = c + ((i + p) % 10) / 10;
      return {
        inputs: { image: { dtype: 'float32', shape: [1, 3, 16, 16], data } },
        outputs: { score: { dtype: 'float32', shape: [1, 1], data: new Float32Array([i]) } },
      };
    });
    const profile = buildReferenceProfile({
      inputs: [{ name: 'image', shape: [1, 3, 16, 16], dtype: 'float32' }],
      outputs: [{ name: 'score', shape: [1, 1], dtype: 'float32' }],
      rows,
    });
    expect(profile.task).toBe('regression');
    expect(profile.image?.layout).toBe('NCHW');
    expect(profile.image?.channels.map((c) => Math.round(c.mean * 100) / 100)).toEqual([0.45, 1.45, 2.45]);
    expect(profile.variables.map((v) => v.name)).toEqual([
      'score',
      'image.c0.mean',
      'image.c0.std',
      'image.c1.mean',
      'image.c1.std',
      'image.c2.mean',
      'image.c2.std',
    ]);
    const c1 = profile.variables.find((v) => v.name === 'image.c1.mean') as NumericVariable;
    expect(c1.mean).toBeCloseTo(1.45, 2);
  });
});

describe('bad reference data gets a typed error, never a crash', () => {
  it('refuses no rows, odd bins and tensors of the wrong size', () => {
    expect(catchError(() => buildReferenceProfile({ ...ioSpecs, rows: [] })).code).toBe(
      'DRIFT_REFERENCE_INVALID',
    );
    expect(catchError(() => buildReferenceProfile({ ...ioSpecs, rows }, { bins: 1 })).code).toBe(
      'DRIFT_REFERENCE_INVALID',
    );
    const broken = [
      ...makeRows(5, 4),
      { inputs: { x: { shape: [1, 3], data: new Float32Array(3) } }, outputs: {} },
    ];
    expect(catchError(() => buildReferenceProfile({ ...ioSpecs, rows: broken })).code).toBe(
      'DRIFT_REFERENCE_INVALID',
    );
  });

  it('leaves out a feature with no finite value and says so', () => {
    const nan = makeRows(50, 5, { transform: (f) => f.map((v, i) => (i === 2 ? Number.NaN : v)) });
    const profile = buildReferenceProfile({ ...ioSpecs, rows: nan, labels: LABELS });
    expect(profile.variables.map((v) => v.name)).not.toContain('x[2]');
    expect(profile.notes).toContain('variable "x[2]" left out: no finite reference value');
  });

  it('rejects a tampered or malformed profile', () => {
    const profile = buildReferenceProfile({ ...ioSpecs, rows: makeRows(100, 6), labels: LABELS });
    const tampered = JSON.parse(JSON.stringify(profile));
    tampered.variables[5].counts[3] += 1;
    expect(catchError(() => parseReferenceProfile(tampered)).code).toBe('DRIFT_PROFILE_INVALID');
    expect(catchError(() => parseReferenceProfile('{not json')).code).toBe('DRIFT_PROFILE_INVALID');
    expect(catchError(() => parseReferenceProfile({ ...profile, variables: [] })).code).toBe(
      'DRIFT_PROFILE_INVALID',
    );
  });
});
