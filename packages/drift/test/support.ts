/**
 * A synthetic tabular classifier for drift tests: features of several shapes (normal, skewed,
 * bounded, binary, counts) and a 3-class softmax over a fixed linear map, so outputs move when
 * inputs move. Deterministic from a seed.
 */
import { normalSource, type ReferenceRow, seededRandom } from '../src/index.ts';

export const FEATURES = 8;
export const CLASSES = 3;
export const LABELS = ['cat', 'dog', 'bird'];

export const ioSpecs = {
  inputs: [{ name: 'x', shape: ['batch', FEATURES] as (number | string)[], dtype: 'float32' }],
  outputs: [{ name: 'probs', shape: ['batch', CLASSES] as (number | string)[], dtype: 'float32' }],
};

const WEIGHTS = [
  [0.8, -0.3, 0.2, 0.5, -0.1, 0.3, 0.05, -0.4],
  [-0.4, 0.6, -0.2, -0.3, 0.4, -0.2, 0.1, 0.3],
  [-0.2, -0.2, 0.5, 0.1, -0.2, 0.1, -0.1, 0.2],
];

export type Transform = (features: number[]) => number[];

/** One sample of the features. */
export function sampler(seed: number): () => number[] {
  const u = seededRandom(seed);
  const z = normalSource(u);
  return () => [
    z(),
    Math.exp(0.5 * z()),
    10 * u(),
    u() < 0.3 ? 1 : 0,
    Math.floor(-Math.log(Math.max(u(), 1e-12)) * 3),
    50 + 5 * z(),
    z() * z(),
    2 * z() - 1,
  ];
}

/** The model: softmax of a linear map (NaN in, NaN out, like a real network). */
export function predict(x: number[]): number[] {
  const logits = WEIGHTS.map((w) => w.reduce((s, wi, i) => s + wi * (i === 5 ? (x[i]! - 50) / 5 : x[i]!), 0));
  const m = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - m));
  const total = e.reduce((s, v) => s + v, 0);
  return e.map((v) => v / total);
}

/** Rows (batches of `batch` samples) from a seeded sampler, optionally transformed. */
export function makeRows(
  count: number,
  seed: number,
  options: { batch?: number; transform?: Transform } = {},
): ReferenceRow[] {
  const next = sampler(seed);
  const batch = options.batch ?? 1;
  const rows: ReferenceRow[] = [];
  for (let r = 0; r < count; r++) {
    const x = new Float32Array(batch * FEATURES);
    const y = new Float32Array(batch * CLASSES);
    for (let b = 0; b < batch; b++) {
      const f = options.transform ? options.transform(next()) : next();
      x.set(f, b * FEATURES);
      y.set(predict(f), b * CLASSES);
    }
    rows.push({
      inputs: { x: { dtype: 'float32', shape: [batch, FEATURES], data: x } },
      outputs: { probs: { dtype: 'float32', shape: [batch, CLASSES], data: y } },
    });
  }
  return rows;
}
