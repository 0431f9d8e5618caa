/** Request, error and latency counts since the last telemetry sample, per model and overall. */
export interface InferenceWindow {
  requests: number;
  errors: number;
  latency_p50_ms: number | null;
  latency_p95_ms: number | null;
}

const MAX_SAMPLES = 5000;

export class InferenceMetrics {
  private latencies: number[] = [];
  private requests = 0;
  private errors = 0;
  private readonly perModel = new Map<string, { requests: number; errors: number }>();
  /** Since start, never reset: probation compares deltas of these. */
  private readonly totals = new Map<string, { requests: number; errors: number }>();

  record(model: string, latencyMs: number, failed: boolean): void {
    this.requests++;
    if (failed) this.errors++;
    // Reservoir of the window's latencies, bounded so a flood of requests costs no memory.
    if (this.latencies.length < MAX_SAMPLES) this.latencies.push(latencyMs);
    else this.latencies[Math.floor(Math.random() * this.requests) % MAX_SAMPLES] = latencyMs;
    const m = this.perModel.get(model) ?? { requests: 0, errors: 0 };
    m.requests++;
    if (failed) m.errors++;
    this.perModel.set(model, m);
    const t = this.totals.get(model) ?? { requests: 0, errors: 0 };
    t.requests++;
    if (failed) t.errors++;
    this.totals.set(model, t);
  }

  /** Requests and errors of a slot since the agent started. */
  total(model: string): { requests: number; errors: number } {
    return { ...(this.totals.get(model) ?? { requests: 0, errors: 0 }) };
  }

  /** Error rate of one model over the current window (for the on-device error-rate guard). */
  modelWindow(model: string): { requests: number; errors: number } {
    return this.perModel.get(model) ?? { requests: 0, errors: 0 };
  }

  /** The window since the last call, then start a new one. */
  take(): InferenceWindow {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const q = (p: number) =>
      sorted.length === 0
        ? null
        : (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number);
    const window = {
      requests: this.requests,
      errors: this.errors,
      latency_p50_ms: q(0.5),
      latency_p95_ms: q(0.95),
    };
    this.latencies = [];
    this.requests = 0;
    this.errors = 0;
    this.perModel.clear();
    return window;
  }
}
