/**
 * Prediction-statistics windows, reported like an agent's: every `windowMs` the current window is
 * closed, numbered (seq, persisted so reloads never reuse one) and sent; windows that fail to send
 * wait, bounded, for the next attempt. What goes inside a window comes from an accumulator:
 * @edgefleet/drift's when wired in, else the basic one below (counts, errors, latency, output moments).
 */
import type { StatsMessage, StatsWindowEnvelope } from '@edgefleet/protocol';
import type { PredictionEvent } from './session.ts';

/** Collects one window of predictions; `take()` returns the window and starts a new one. */
export interface WindowAccumulator {
  add(event: PredictionEvent): void;
  readonly count: number;
  take(): unknown;
}

/** A number kept across page loads (localStorage in browsers). */
export interface SeqStore {
  get(): number;
  set(value: number): void;
}

export interface StatsReporterOptions {
  model: string;
  version: string;
  send(message: StatsMessage, options: { keepalive: boolean }): Promise<void>;
  accumulator?: () => WindowAccumulator;
  seq?: SeqStore;
  /** Windows kept while the hub is unreachable; the oldest are dropped beyond this. */
  maxPending?: number;
  clock?: () => Date;
}

export interface StatsReporter {
  observe(event: PredictionEvent): void;
  /** Close the current window (if it has predictions) and send everything pending. */
  flush(options?: { keepalive?: boolean }): Promise<{ sent: number; pending: number; error?: string }>;
  readonly pending: number;
  readonly dropped: number;
}

/** A reporter; the caller decides when to flush (a timer, page hide, or a test). */
export function createStatsReporter(options: StatsReporterOptions): StatsReporter {
  const clock = options.clock ?? (() => new Date());
  const makeAccumulator = options.accumulator ?? basicAccumulator;
  let memorySeq = 0;
  const seq = options.seq ?? {
    get: () => memorySeq,
    set: (v: number) => {
      memorySeq = v;
    },
  };
  const maxPending = options.maxPending ?? 100;
  let current = makeAccumulator();
  let windowStart = clock();
  let pending: StatsWindowEnvelope[] = [];
  let dropped = 0;
  let sending: Promise<unknown> = Promise.resolve();

  function closeWindow(): void {
    const end = clock();
    if (current.count > 0) {
      const next = seq.get() + 1;
      seq.set(next);
      pending.push({
        seq: next,
        model: options.model,
        version: options.version,
        start: windowStart.toISOString(),
        end: end.toISOString(),
        window: current.take(),
      });
      if (pending.length > maxPending) {
        dropped += pending.length - maxPending;
        pending = pending.slice(-maxPending);
      }
    }
    current = makeAccumulator();
    windowStart = end;
  }

  return {
    observe(event) {
      current.add(event);
    },
    flush(flushOptions = {}) {
      closeWindow();
      const attempt = sending.then(async () => {
        const batch = pending.slice(0, 1000);
        if (batch.length === 0) return { sent: 0, pending: pending.length };
        try {
          await options.send({ windows: batch }, { keepalive: flushOptions.keepalive ?? false });
        } catch (error) {
          return { sent: 0, pending: pending.length, error: String(error) };
        }
        const sentSeqs = new Set(batch.map((w) => w.seq));
        pending = pending.filter((w) => !sentSeqs.has(w.seq));
        return { sent: batch.length, pending: pending.length };
      });
      sending = attempt.catch(() => undefined);
      return attempt;
    },
    get pending() {
      return pending.length;
    },
    get dropped() {
      return dropped;
    },
  };
}

/** Per-output running moments: exactly mergeable by addition across windows and devices. */
interface Moments {
  count: number;
  sum: number;
  sum_sq: number;
  min: number | null;
  max: number | null;
  non_finite: number;
}

const LATENCY_SAMPLES = 2048;

/** The fallback window: request/error counts, latency quantiles, and output moments. */
export function basicAccumulator(): WindowAccumulator {
  let count = 0;
  let errors = 0;
  let latencies: number[] = [];
  let outputs: Record<string, Moments> = {};
  return {
    get count() {
      return count;
    },
    add(event) {
      count++;
      // A uniform sample of at most LATENCY_SAMPLES latencies keeps a busy window's memory flat.
      if (latencies.length < LATENCY_SAMPLES) latencies.push(event.latency_ms);
      else {
        const slot = Math.floor(Math.random() * count);
        if (slot < LATENCY_SAMPLES) latencies[slot] = event.latency_ms;
      }
      if (event.error) {
        errors++;
        return;
      }
      for (const [name, t] of Object.entries(event.outputs ?? {})) {
        const m = outputs[name] ?? { count: 0, sum: 0, sum_sq: 0, min: null, max: null, non_finite: 0 };
        outputs[name] = m;
        for (const raw of t.data as Iterable<number | bigint>) {
          const v = Number(raw);
          if (!Number.isFinite(v)) {
            m.non_finite++;
            continue;
          }
          m.count++;
          m.sum += v;
          m.sum_sq += v * v;
          m.min = m.min === null ? v : Math.min(m.min, v);
          m.max = m.max === null ? v : Math.max(m.max, v);
        }
      }
    },
    take() {
      const sorted = [...latencies].sort((a, b) => a - b);
      const q = (p: number) =>
        sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? null) : null;
      const window = {
        kind: 'edgefleet-web-basic',
        requests: count,
        errors,
        latency_p50_ms: q(0.5),
        latency_p95_ms: q(0.95),
        latency_max_ms: sorted.length ? (sorted[sorted.length - 1] ?? null) : null,
        outputs,
      };
      count = 0;
      errors = 0;
      latencies = [];
      outputs = {};
      return window;
    },
  };
}
