/**
 * The known answers of research/drift.md §15 (TV-1 … TV-11), each from an anchor's own tests or
 * computed with SciPy from the anchor's formula. TV-12 (a simulation) is in psi-null.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  binnedKs,
  bonferroniDecision,
  categoricalCounts,
  chi2Contingency,
  chi2GoodnessOfFit,
  fdrDecision,
  hellinger,
  histogramJsDivergence,
  jsDistance,
  jsDivergence,
  kllRankError,
  ksCriticalD,
  ksPValue,
  ksTwoSample,
  kstwoSf,
  lInfinity,
  normalizedAbsDifference,
  populationStd,
  proportions,
  psi,
  psiEvidently,
  psiSmoothed,
  stdThreshold,
  tTest,
  twoProportionZ,
  wassersteinSamples,
} from '../src/index.ts';
import { cbpeBinary } from '../src/performance.ts';

const rel = (actual: number, expected: number, tolerance: number) =>
  expect(Math.abs(actual - expected) / Math.abs(expected)).toBeLessThan(tolerance);

describe('TV-1: Evidently chi-square goodness of fit and categorical Hellinger', () => {
  const ref = [16, 18, 16, 14, 12, 12];
  const cur = [16, 16, 16, 16, 16, 8];
  it('gives p = 0.67309 and Hellinger 0.06812, and the same when the reference doubles', () => {
    expect(chi2GoodnessOfFit(ref, cur).pValue).toBeCloseTo(0.6730876, 6);
    expect(hellinger(ref, cur)).toBeCloseTo(0.0681277, 6);
    const doubled = ref.map((x) => 2 * x);
    expect(chi2GoodnessOfFit(doubled, cur).pValue).toBeCloseTo(0.6730876, 6);
    expect(hellinger(doubled, cur)).toBeCloseTo(0.0681277, 6);
  });
  it('the contingency test on the same counts is far less aggressive (p = 0.89853)', () => {
    expect(chi2Contingency(ref, cur).pValue).toBeCloseTo(0.89853, 5);
  });
});

describe('TV-2: small numeric samples', () => {
  const ref = [38.7, 41.5, 43.8, 44.5, 45.5, 46.0, 47.7, 58.0];
  const cur = [39.2, 39.3, 39.7, 41.4, 41.8, 42.9, 43.3, 45.8];
  it('t-test p = 0.0841 (Evidently test_t_test)', () => {
    expect(tTest(ref, cur).pValue).toBeCloseTo(0.0841057, 6);
  });
  it('KS D = 0.625 with exact p 0.087024 and SciPy asymp p 0.049316; Stephens gives 0.049654', () => {
    const ks = ksTwoSample(ref, cur);
    expect(ks.d).toBeCloseTo(0.625, 12);
    expect(ks.pExact).toBeCloseTo(0.087024, 6);
    expect(ks.pAsymp).toBeCloseTo(0.049316, 6);
    expect(ksPValue(0.625, 8, 8)).toBeCloseTo(0.049654, 6);
  });
  it('W1 = 4.1625, σ_ref = 5.32809, Evidently normalised W = 0.781236', () => {
    const w = wassersteinSamples(ref, cur);
    expect(w).toBeCloseTo(4.1625, 10);
    expect(populationStd(ref)).toBeCloseTo(5.32809, 5);
    expect(w / Math.max(populationStd(ref), 0.001)).toBeCloseTo(0.781236, 6);
  });
});

describe('TV-3: TFDV Jensen–Shannon divergence (base 2) and L-infinity', () => {
  it('rebuckets [1,2):2,[2,3):2 vs [2,4):2,[4,6):2 to JSD 0.65563906222', () => {
    const a = {
      buckets: [
        { low: 1, high: 2, count: 2 },
        { low: 2, high: 3, count: 2 },
      ],
    };
    const b = {
      buckets: [
        { low: 2, high: 4, count: 2 },
        { low: 4, high: 6, count: 2 },
      ],
    };
    expect(histogramJsDivergence(a, b)).toBeCloseTo(0.65563906222, 9);
  });
  it('gives 1 for no overlap and for all mass in one point, and 0.13792538 with NaNs', () => {
    const point = { buckets: [{ low: 1, high: 1, count: 4 }] };
    expect(
      histogramJsDivergence(
        {
          buckets: [
            { low: 0, high: 1, count: 2 },
            { low: 1, high: 2, count: 2 },
          ],
        },
        {
          buckets: [
            { low: 3, high: 4, count: 2 },
            { low: 4, high: 6, count: 2 },
          ],
        },
      ),
    ).toBeCloseTo(1, 9);
    expect(histogramJsDivergence(point, { buckets: [{ low: 2, high: 2, count: 4 }] })).toBeCloseTo(1, 9);
    expect(
      histogramJsDivergence(
        { buckets: [{ low: 10, high: 10, count: 21 }] },
        {
          buckets: [
            { low: 0, high: 4, count: 150 },
            { low: 4, high: 12, count: 200 },
            { low: 12, high: 20, count: 20 },
          ],
        },
      ),
    ).toBeCloseTo(1, 9);
    expect(
      histogramJsDivergence(
        { nanCount: 1, buckets: [{ low: 1, high: 2, count: 3 }] },
        { buckets: [{ low: 1, high: 2, count: 4 }] },
      ),
    ).toBeCloseTo(0.13792538096, 9);
  });
  it('rank histograms {b:2,a:2,c:1} vs {a:2,Z:1,Y:1,X:1}: JSD 0.6; SciPy distances 0.644894 (e) and 0.774597 (2)', () => {
    const c = categoricalCounts(['b', 'b', 'a', 'a', 'c'], ['a', 'a', 'Z', 'Y', 'X']);
    expect(jsDivergence(c.reference, c.current, 2)).toBeCloseTo(0.6, 12);
    expect(jsDistance(c.reference, c.current, Math.E)).toBeCloseTo(0.644894, 6);
    expect(jsDistance(c.reference, c.current, 2)).toBeCloseTo(0.774597, 6);
  });
  it('L∞ 0.2 and 0.3 (missing values on both sides); normalized_abs_difference 0.1 and 45/60', () => {
    expect(lInfinity([0.1, 0.9], [0.3, 0.7]).value).toBeCloseTo(0.2, 12);
    // categories a, b, c: training {b:0.9, c:0.1}, serving {a:0.3, b:0.7}
    expect(lInfinity([0, 0.9, 0.1], [0.3, 0.7, 0]).value).toBeCloseTo(0.3, 12);
    expect(lInfinity([0.3, 0.7, 0], [0, 0.9, 0.1]).value).toBeCloseTo(0.3, 12);
    expect(normalizedAbsDifference([0.1, 0.9], [0.3, 0.7])).toBeCloseTo(0.1, 12);
    expect(normalizedAbsDifference([1, 5], [10, 50])).toBeCloseTo(0.68181818, 8);
  });
});

describe('TV-4: NannyML L-infinity and the standard-deviation threshold', () => {
  const ref = ['a', 'a', 'b', 'b', 'c', 'c'];
  const linf = (cur: string[]) => {
    const c = categoricalCounts(ref, cur);
    return lInfinity(c.reference, c.current).value;
  };
  it('gives 0.14 (1/7), 0.67 (2/3) and 0', () => {
    expect(linf([...ref, 'd'])).toBeCloseTo(1 / 7, 12);
    expect(linf(['b', 'b', 'b', 'b', 'b'])).toBeCloseTo(2 / 3, 12);
    expect(linf(ref)).toBe(0);
  });
  it('StandardDeviationThreshold(3, 3) on range(10) is (−4.116843969807043, 13.116843969807043)', () => {
    const t = stdThreshold([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(t.lower).toBeCloseTo(-4.116843969807043, 12);
    expect(t.upper).toBeCloseTo(13.116843969807043, 12);
  });
});

describe('TV-5: PSI worked example', () => {
  it('[0.4, 0.3, 0.3] vs [0.35, 0.25, 0.4] gives 0.0445609', () => {
    expect(psi([0.4, 0.3, 0.3], [0.35, 0.25, 0.4])).toBeCloseTo(0.0445609, 7);
  });
});

describe('TV-6: every binned metric on three count vectors', () => {
  const cases = [
    {
      name: 'A',
      ref: [100, 200, 300, 400],
      cur: [150, 150, 300, 400],
      psi: 0.0346574,
      psiEvidently: 0.0346574,
      psiPlusOne: 0.0342721,
      jsE: 0.0656413,
      js2: 0.0788432,
      jsd2: 0.0062163,
      hellinger: 0.06573,
      linf: 0.05,
      chi2: [17.142857, 6.605e-4],
      gofP: 3.6065e-8,
      ksD: 0.05,
    },
    {
      name: 'B (empty reference bin)',
      ref: [50, 30, 20, 0],
      cur: [40, 30, 20, 10],
      psi: Number.POSITIVE_INFINITY,
      psiEvidently: 0.7123991,
      psiPlusOne: 0.2515528,
      jsE: 0.1934965,
      js2: 0.2324129,
      jsd2: 0.0540158,
      hellinger: 0.2297529,
      linf: 0.1,
      chi2: [11.111111, 0.01114],
      gofP: undefined,
      ksD: 0.1,
    },
    {
      name: 'C (deciles)',
      ref: new Array(10).fill(100),
      cur: [60, 70, 80, 90, 100, 100, 110, 120, 130, 140],
      psi: 0.0625791,
      psiEvidently: 0.0625791,
      psiPlusOne: 0.0612916,
      jsE: 0.0881779,
      js2: 0.1059124,
      jsd2: 0.0112174,
      hellinger: 0.0883105,
      linf: 0.04,
      chi2: [30.916738, 3.0593e-4],
      gofP: 1.3407e-9,
      ksD: 0.1,
    },
  ];
  for (const c of cases)
    it(`case ${c.name}`, () => {
      const p = proportions(c.ref);
      const q = proportions(c.cur);
      if (Number.isFinite(c.psi)) expect(psi(p, q)).toBeCloseTo(c.psi, 7);
      else expect(psi(p, q)).toBe(Number.POSITIVE_INFINITY);
      expect(psiEvidently(c.ref, c.cur)).toBeCloseTo(c.psiEvidently, 7);
      expect(psiSmoothed(c.ref, c.cur, 1)).toBeCloseTo(c.psiPlusOne, 7);
      expect(jsDistance(c.ref, c.cur, Math.E)).toBeCloseTo(c.jsE, 7);
      expect(jsDistance(c.ref, c.cur, 2)).toBeCloseTo(c.js2, 7);
      expect(jsDivergence(c.ref, c.cur, 2)).toBeCloseTo(c.jsd2, 7);
      expect(hellinger(c.ref, c.cur)).toBeCloseTo(c.hellinger, 6);
      expect(lInfinity(c.ref, c.cur).value).toBeCloseTo(c.linf, 12);
      const chi = chi2Contingency(c.ref, c.cur);
      expect(chi.statistic).toBeCloseTo(c.chi2[0]!, 6);
      rel(chi.pValue, c.chi2[1]!, 1e-4);
      if (c.gofP !== undefined) rel(chi2GoodnessOfFit(c.ref, c.cur).pValue, c.gofP, 1e-4);
      expect(binnedKs(c.ref, c.cur).d).toBeCloseTo(c.ksD, 12);
    });
});

describe('TV-7: two-proportion z-test against χ² with and without Yates', () => {
  it('30/100 vs 45/100: z = −2.190890, p = 0.028460; Yates p = 0.040872', () => {
    const z = twoProportionZ(30, 100, 45, 100);
    expect(z.z).toBeCloseTo(-2.19089, 6);
    expect(z.pValue).toBeCloseTo(0.02846, 6);
    expect(chi2Contingency([70, 30], [55, 45], { yates: false }).pValue).toBeCloseTo(0.02846, 6);
    expect(chi2Contingency([70, 30], [55, 45]).pValue).toBeCloseTo(0.040872, 6);
  });
  it('@stdlib chi2test README: [[20, 30], [30, 20]] gives 3.24 (p ≈ 0.072) with Yates, 4 (p ≈ 0.046) without', () => {
    const yates = chi2Contingency([20, 30], [30, 20]);
    expect(yates.statistic).toBeCloseTo(3.24, 12);
    expect(yates.pValue).toBeCloseTo(0.072, 3);
    expect(yates.df).toBe(1);
    const plain = chi2Contingency([20, 30], [30, 20], { yates: false });
    expect(plain.statistic).toBeCloseTo(4, 12);
    expect(plain.pValue).toBeCloseTo(0.046, 3);
  });
});

describe('TV-8: multiple testing with alibi-detect semantics (strict <)', () => {
  it('BH at q = 0.05 flags drift with threshold 0.03 where Bonferroni does not', () => {
    const p = [0.012, 0.014, 0.02, 0.5, 0.9];
    expect(fdrDecision(p, 0.05)).toEqual({ drift: true, threshold: expect.closeTo(0.03, 12) });
    expect(bonferroniDecision(p, 0.05).drift).toBe(false);
  });
  it('p exactly on the BH line is not drift', () => {
    expect(fdrDecision([0.01, 0.02, 0.03, 0.04, 0.05], 0.05).drift).toBe(false);
  });
});

describe('TV-9: CBPE expected confusion matrix', () => {
  it('gives TP 2.3, FP 0.7, FN 0.4, TN 1.6; accuracy 0.78, precision 0.766667, recall 0.851852, F1 0.8070175', () => {
    const r = cbpeBinary([0.9, 0.8, 0.3, 0.6, 0.1], 0.5);
    expect(r.tp).toBeCloseTo(2.3, 12);
    expect(r.fp).toBeCloseTo(0.7, 12);
    expect(r.fn).toBeCloseTo(0.4, 12);
    expect(r.tn).toBeCloseTo(1.6, 12);
    expect(r.accuracy).toBeCloseTo(0.78, 12);
    expect(r.precision).toBeCloseTo(0.766667, 6);
    expect(r.recall).toBeCloseTo(0.851852, 6);
    expect(r.f1).toBeCloseTo(0.8070175, 7);
  });
});

describe('TV-10: KLL error constants and the DataSketches KS threshold', () => {
  it('ε(200) = 0.0132948, ε(1024) = 0.0027168; threshold at r = 600, α = 0.05 is 0.1050', () => {
    expect(kllRankError(200)).toBeCloseTo(0.0132948, 7);
    expect(kllRankError(1024)).toBeCloseTo(0.0027168, 7);
    expect(ksCriticalD(0.05, 600, 600) + 2 * kllRankError(200)).toBeCloseTo(0.105, 4);
  });
  it('critical values c(α): D_crit(0.05) = 0.192 at n = m = 100 and 0.0086 at 50 000', () => {
    expect(ksCriticalD(0.05, 100, 100)).toBeCloseTo(0.192, 3);
    expect(ksCriticalD(0.05, 50_000, 50_000)).toBeCloseTo(0.0086, 4);
  });
});

describe('TV-11: the KS p-value function against SciPy asymp and Stephens', () => {
  const table: [number, number, number, number, number][] = [
    [8, 8, 0.625, 0.049316, 0.049654],
    [1000, 1000, 0.05, 0.158663, 0.159554],
    [10000, 500, 0.06, 0.062333, 0.062358],
    [100000, 2000, 0.03, 0.057442, 0.057508],
    [50000, 561000, 0.01, 2.0443e-4, 2.037e-4],
  ];
  for (const [n, m, d, scipy, stephens] of table)
    it(`n = ${n}, m = ${m}, D = ${d}`, () => {
      const p = ksPValue(d, n, m);
      expect(Math.abs(p - stephens)).toBeLessThan(stephens < 0.001 ? 1e-8 : 1e-6);
      rel(p, scipy, 0.01);
      rel(kstwoSf(d, Math.round((n * m) / (n + m))), scipy, 0.01);
    });
  it('the exact one-sample distribution reproduces SciPy where it is cheap', () => {
    expect(kstwoSf(0.625, 4)).toBeCloseTo(0.04931640625, 10);
    rel(kstwoSf(0.05, 500), 0.158663, 1e-4);
  });
});
