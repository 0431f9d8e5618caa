/** What every benchmark module returns, and the helpers they share (timing, percentiles, rows). */

export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  /** The same measure taken the plain way in the same run (null when the row has no baseline). */
  baseline: number | null;
  /** value / baseline (null without a baseline). */
  ratio: number | null;
  /** The goal, as text ("ratio ≤ 1.10", "< 10 s"); null when there is none. */
  target: string | null;
  /** Whether the target is met (null without a target). */
  met: boolean | null;
}

export interface BenchResult {
  name: string;
  title: string;
  rows: BenchRow[];
  /** Rows left out, each with the reason (a service not reachable, say). */
  skipped: { name: string; reason: string }[];
  /** Setup facts a reader needs (counts, model size, session options). */
  notes: string[];
}

export interface BenchContext {
  /** Smaller counts so the whole run takes about a minute. */
  quick: boolean;
  progress(text: string): void;
  /** The CLI entry file, for benchmarks that start agents as separate processes. */
  cliPath: string;
}

export interface BenchModule {
  name: string;
  title: string;
  run(ctx: BenchContext): Promise<BenchResult>;
}

export function row(
  name: string,
  value: number,
  unit: string,
  options: { baseline?: number; target?: string; met?: boolean } = {},
): BenchRow {
  const baseline = options.baseline ?? null;
  return {
    name,
    value,
    unit,
    baseline,
    ratio: baseline !== null && baseline !== 0 ? value / baseline : null,
    target: options.target ?? null,
    met: options.met ?? null,
  };
}

export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

export const median = (values: readonly number[]) => percentile(values, 0.5);

/** Median wall time (ms) of `runs` calls of `fn`. */
export async function timeMedian(runs: number, fn: () => unknown): Promise<number> {
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return median(out);
}

/** Latencies (ms) of `count` sequential calls after `warmup` unmeasured ones. */
export async function latencies(
  count: number,
  warmup: number,
  fn: () => Promise<unknown>,
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await fn();
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Poll `check` until it returns true; throws with `what` after `timeoutMs`. */
export async function until(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs: number,
  everyMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
