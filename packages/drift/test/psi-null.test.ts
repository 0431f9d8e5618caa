/**
 * TV-12 (research/drift.md §15): PSI under the null with B = 10 reference deciles, N = 10 000 and
 * Evidently's 1e-4 fill: mean ≈ 0.046 and P(PSI > 0.1) ≈ 3 % at M = 200; ≈ 0.095 and ≈ 38 % at M = 100.
 * This is why windows under M_min are merged rather than tested (research pitfall P2).
 */
import { describe, expect, it } from 'vitest';
import { binIndex, equalMassEdges, normalSource, psiEvidently, seededRandom } from '../src/index.ts';

describe('TV-12: PSI null calibration', () => {
  const z = normalSource(seededRandom(20261122));
  const reference = Float64Array.from({ length: 10_000 }, z).sort();
  const edges = equalMassEdges(reference, 10);
  const min = reference[0]!;
  const max = reference[reference.length - 1]!;
  const deciles = (values: Iterable<number>) => {
    const c = new Array<number>(10).fill(0);
    // Guards fold into the outer deciles, as the outer bins extend to ±∞ in the standard construction.
    for (const x of values) c[Math.min(9, Math.max(0, binIndex(edges, min, max, x) - 2))]!++;
    return c;
  };
  const ref = deciles(reference);
  const simulate = (m: number) => {
    const values: number[] = [];
    for (let r = 0; r < 2000; r++) values.push(psiEvidently(ref, deciles(Array.from({ length: m }, z))));
    return {
      mean: values.reduce((s, v) => s + v, 0) / values.length,
      above: values.filter((v) => v > 0.1).length / values.length,
    };
  };
  it('M = 200: mean 0.046 ± 0.005, P(PSI > 0.1) 3 % ± 3 pp', () => {
    const r = simulate(200);
    expect(Math.abs(r.mean - 0.046)).toBeLessThan(0.005);
    expect(Math.abs(r.above - 0.03)).toBeLessThan(0.03);
  });
  it('M = 100: mean 0.095 ± 0.005, P(PSI > 0.1) 38 % ± 3 pp', () => {
    const r = simulate(100);
    expect(Math.abs(r.mean - 0.095)).toBeLessThan(0.005);
    expect(Math.abs(r.above - 0.38)).toBeLessThan(0.03);
  });
});
