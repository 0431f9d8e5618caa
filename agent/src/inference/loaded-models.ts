/**
 * The models this agent serves, one per slot, and the single path every inference takes: it counts
 * requests, errors and latency, and offers each call to the observers (drift statistics).
 */
import type { BundleManifest, PlainTensor } from '@edgefleet/bundle';
import type { Logger } from 'pino';
import type { ModelSession } from '../runtime/backend.ts';
import type { InstalledEntry } from '../state/model-store.ts';
import type { InferenceMetrics } from './metrics.ts';
import type { InferenceObserver } from './observer.ts';

export interface LoadedModel {
  slot: string;
  entry: InstalledEntry;
  manifest: BundleManifest;
  session: ModelSession;
}

/** True when an output holds NaN or ±Inf: counted as an error, like an exception. */
function hasInvalidValues(outputs: Record<string, PlainTensor>): boolean {
  for (const t of Object.values(outputs)) {
    if (t.dtype !== 'float32') continue;
    for (const v of t.data as Float32Array) if (!Number.isFinite(v)) return true;
  }
  return false;
}

interface Shadow {
  version: string;
  session: ModelSession;
  busy: boolean;
  compared: number;
  agreed: number;
  primaryMs: number;
  shadowMs: number;
}

/** Two answers agree: the same top class for class scores, else equal within a small tolerance. */
export function outputsAgree(a: PlainTensor | undefined, b: PlainTensor | undefined): boolean {
  if (!a || !b || a.data.length !== b.data.length) return false;
  const x = Array.from(a.data as ArrayLike<number>, Number);
  const y = Array.from(b.data as ArrayLike<number>, Number);
  const classes = a.shape.at(-1) ?? 1;
  if (classes > 1) {
    for (let row = 0; row < x.length; row += classes) {
      const argmax = (v: number[]) =>
        v
          .slice(row, row + classes)
          .reduce((best, value, i, all) => (value > (all[best] as number) ? i : best), 0);
      if (argmax(x) !== argmax(y)) return false;
    }
    return true;
  }
  return x.every((v, i) => Math.abs(v - (y[i] as number)) <= 1e-3 + 1e-2 * Math.abs(y[i] as number));
}

export class LoadedModels {
  private readonly models = new Map<string, LoadedModel>();
  private readonly shadows = new Map<string, Shadow>();
  private readonly observers: InferenceObserver[] = [];

  constructor(
    private readonly metrics: InferenceMetrics,
    private readonly logger: Logger,
  ) {}

  addObserver(observer: InferenceObserver): void {
    this.observers.push(observer);
  }

  get(slot: string): LoadedModel | undefined {
    return this.models.get(slot);
  }

  list(): LoadedModel[] {
    return [...this.models.values()];
  }

  /** Serve `model` in its slot from now on; the old session is closed once in-flight calls finish. */
  swap(model: LoadedModel): void {
    const old = this.models.get(model.slot);
    this.models.set(model.slot, model);
    if (old && old.session !== model.session) this.retire(old);
    for (const observer of this.observers) {
      Promise.resolve(observer.activated?.(model)).catch((error: unknown) =>
        this.logger.warn({ err: error, slot: model.slot }, 'inference observer failed on activation'),
      );
    }
  }

  remove(slot: string): void {
    const old = this.models.get(slot);
    this.models.delete(slot);
    if (old) {
      this.retire(old);
      for (const observer of this.observers) observer.removed?.(old.entry.name);
    }
  }

  private retire(model: LoadedModel): void {
    // Requests that picked up the old session keep it for a moment; then release native memory.
    setTimeout(() => {
      model.session
        .close()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'closing a retired session failed'));
    }, 2000).unref();
  }

  /** Run `session` beside the slot's model on live traffic, without serving its answers. */
  setShadow(slot: string, candidate: { version: string; session: ModelSession }): void {
    this.clearShadow(slot);
    this.shadows.set(slot, { ...candidate, busy: false, compared: 0, agreed: 0, primaryMs: 0, shadowMs: 0 });
  }

  clearShadow(slot: string): void {
    const s = this.shadows.get(slot);
    this.shadows.delete(slot);
    if (s) s.session.close().catch(() => undefined);
  }

  /** Shadow comparisons since the last call, for telemetry. */
  takeShadowStats(): {
    model: string;
    candidate_version: string;
    compared: number;
    agreed: number;
    latency_delta_ms: number | null;
  }[] {
    const out = [];
    for (const [slot, s] of this.shadows) {
      const model = this.models.get(slot)?.entry.name ?? slot;
      out.push({
        model,
        candidate_version: s.version,
        compared: s.compared,
        agreed: s.agreed,
        latency_delta_ms: s.compared > 0 ? (s.shadowMs - s.primaryMs) / s.compared : null,
      });
      Object.assign(s, { compared: 0, agreed: 0, primaryMs: 0, shadowMs: 0 });
    }
    return out;
  }

  private runShadow(
    slot: string,
    inputs: Record<string, PlainTensor>,
    outputs: Record<string, PlainTensor>,
    primaryMs: number,
  ): void {
    const s = this.shadows.get(slot);
    // One shadow call at a time per slot: under load the candidate samples traffic instead of queueing.
    if (!s || s.busy) return;
    s.busy = true;
    const started = performance.now();
    s.session
      .run(inputs)
      .then((shadowOut) => {
        const first = Object.keys(outputs)[0] as string;
        s.compared++;
        if (outputsAgree(outputs[first], shadowOut[first])) s.agreed++;
        s.primaryMs += primaryMs;
        s.shadowMs += performance.now() - started;
      })
      .catch(() => {
        s.compared++;
      })
      .finally(() => {
        s.busy = false;
      });
  }

  async closeAll(): Promise<void> {
    for (const slot of [...this.shadows.keys()]) this.clearShadow(slot);
    for (const m of this.models.values()) await m.session.close().catch(() => undefined);
    this.models.clear();
  }

  /** Run one inference on a slot's model. */
  async infer(
    slot: string,
    inputs: Record<string, PlainTensor>,
  ): Promise<{ model: LoadedModel; outputs: Record<string, PlainTensor>; latencyMs: number }> {
    const model = this.models.get(slot);
    if (!model) throw new Error(`model ${slot} is not loaded`);
    const started = performance.now();
    let outputs: Record<string, PlainTensor> | null = null;
    let error: Error | null = null;
    try {
      outputs = await model.session.run(inputs);
      if (hasInvalidValues(outputs)) error = new Error('output contains NaN or Inf');
    } catch (e) {
      error = e as Error;
    }
    const latencyMs = performance.now() - started;
    this.metrics.record(slot, latencyMs, error !== null);
    for (const observer of this.observers) {
      try {
        observer.observe({
          model: model.entry.name,
          version: model.entry.version,
          inputs,
          outputs,
          latencyMs,
          error,
        });
      } catch (e) {
        this.logger.warn({ err: e }, 'inference observer failed');
      }
    }
    if (!outputs) throw error;
    this.runShadow(slot, inputs, outputs, latencyMs);
    return { model, outputs, latencyMs };
  }
}
