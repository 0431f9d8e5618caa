/**
 * Kolmogorov–Smirnov p-values. The hub uses `ksPValue` (Stephens' corrected limiting form) on
 * binned D, which is conservative (research/drift.md §9). The exact forms match SciPy's `exact`
 * and `asymp` modes of `ks_2samp` for small samples, where the two disagree (TV-2).
 */

/** Q_KS(λ) = 2 Σ (−1)^{j−1} e^{−2j²λ²}, clamped to [0, 1]. */
export function kolmogorovQ(lambda: number): number {
  if (lambda < 1e-3) return 1;
  let sum = 0;
  for (let j = 1; j <= 100; j++) {
    const term = (j % 2 === 1 ? 2 : -2) * Math.exp(-2 * j * j * lambda * lambda);
    sum += term;
    if (Math.abs(term) < 1e-17) break;
  }
  return Math.min(1, Math.max(0, sum));
}

/** Two-sample KS p-value for statistic D, sizes n and m, with Stephens' small-sample correction. */
export function ksPValue(d: number, n: number, m: number): number {
  if (n <= 0 || m <= 0) return 1;
  const en = (n * m) / (n + m);
  const s = Math.sqrt(en);
  return kolmogorovQ((s + 0.12 + 0.11 / s) * d);
}

/** The D above which a two-sample KS test rejects at level α: c(α)·√((n+m)/(nm)). */
export function ksCriticalD(alpha: number, n: number, m: number): number {
  return Math.sqrt(-0.5 * Math.log(alpha / 2)) * Math.sqrt((n + m) / (n * m));
}

/**
 * P(D_n ≥ d) for the one-sample statistic (SciPy `kstwo.sf`), by the Marsaglia–Tsang–Wang matrix
 * method while that is cheap, else by the corrected limiting form (within about 1 %).
 */
export function kstwoSf(d: number, n: number): number {
  if (d <= 0) return 1;
  if (d >= 1) return 0;
  const k = Math.floor(n * d) + 1;
  if (2 * k - 1 > 160) return ksPValue(d, 2 * n, 2 * n); // en = n
  return Math.min(1, Math.max(0, 1 - kolmogorovCdfExact(n, d)));
}

function kolmogorovCdfExact(n: number, d: number): number {
  const k = Math.floor(n * d) + 1;
  const m = 2 * k - 1;
  const h = k - n * d;
  const H: number[][] = Array.from({ length: m }, (_, i) =>
    Array.from({ length: m }, (_, j) => (i - j + 1 < 0 ? 0 : 1)),
  );
  for (let i = 0; i < m; i++) {
    H[i]![0]! -= h ** (i + 1);
    H[m - 1]![i]! -= h ** (m - i);
  }
  H[m - 1]![0]! += 2 * h - 1 > 0 ? (2 * h - 1) ** m : 0;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < m; j++) if (i - j + 1 > 0) for (let g = 1; g <= i - j + 1; g++) H[i]![j]! /= g;
  const [Q, eQ] = matrixPower(H, 0, n);
  let s = Q[k - 1]![k - 1]!;
  let e = eQ;
  for (let i = 1; i <= n; i++) {
    s = (s * i) / n;
    if (s < 1e-140) {
      s *= 1e140;
      e -= 140;
    }
  }
  return s * 10 ** e;
}

/** A^n with a decimal exponent kept aside so entries never overflow. */
function matrixPower(A: number[][], eA: number, n: number): [number[][], number] {
  if (n === 1) return [A, eA];
  const [half, eHalf] = matrixPower(A, eA, Math.floor(n / 2));
  let B = multiply(half, half);
  let eB = 2 * eHalf;
  if (n % 2 === 1) {
    B = multiply(A, B);
    eB += eA;
  }
  const mid = B[Math.floor(B.length / 2)]![Math.floor(B.length / 2)]!;
  if (mid > 1e140) {
    B = B.map((row) => row.map((v) => v * 1e-140));
    eB += 140;
  }
  return [B, eB];
}

function multiply(a: number[][], b: number[][]): number[][] {
  const m = a.length;
  const out = Array.from({ length: m }, () => new Array<number>(m).fill(0));
  for (let i = 0; i < m; i++)
    for (let k = 0; k < m; k++) {
      const aik = a[i]![k]!;
      if (aik === 0) continue;
      const row = b[k]!;
      const o = out[i]!;
      for (let j = 0; j < m; j++) o[j]! += aik * row[j]!;
    }
  return out;
}

/**
 * Exact two-sample p = P(D ≥ d) under H0 by counting lattice paths (SciPy `method='exact'`).
 * Cost n·m; meant for small samples.
 */
export function ksTwoSampleExactP(d: number, n: number, m: number): number {
  const limit = d * n * m * (1 - 1e-12);
  const inside = (i: number, j: number) => Math.abs(i * m - j * n) < limit;
  // u[j] = share of monotone paths to (i, j) that stayed inside the band.
  let u = new Array<number>(m + 1).fill(0);
  u[0] = 1;
  for (let j = 1; j <= m; j++) u[j] = inside(0, j) ? u[j - 1]! : 0;
  for (let i = 1; i <= n; i++) {
    const next = new Array<number>(m + 1).fill(0);
    next[0] = inside(i, 0) ? u[0]! : 0;
    for (let j = 1; j <= m; j++) next[j] = inside(i, j) ? (i * u[j]! + j * next[j - 1]!) / (i + j) : 0;
    u = next;
  }
  return Math.min(1, Math.max(0, 1 - u[m]!));
}

/**
 * KLL sketch single-sided rank error ε(k) = 2.296/k^0.9723 (DataSketches constant). We ship exact
 * bin counts instead of sketches; this documents why (ε exceeds D_crit on large samples).
 */
export function kllRankError(k: number): number {
  return 2.296 / k ** 0.9723;
}
