/**
 * Probation after a switch: a new model that crash-loops the agent or whose error rate spikes is
 * reverted on the device to the previous one, and the reason is reported. Crash loops are counted
 * across restarts: each start while a model is still on probation bumps its boot counter on disk.
 */
import type { Logger } from 'pino';
import type { LoadedModels } from './inference/loaded-models.ts';
import type { InferenceMetrics } from './inference/metrics.ts';
import type { Reconciler } from './reconciler.ts';
import type { InstalledEntry, ModelStore } from './state/model-store.ts';

export interface ProbationOptions {
  store: ModelStore;
  models: LoadedModels;
  metrics: InferenceMetrics;
  reconciler: Reconciler;
  logger: Logger;
  /** How long a new model is watched (default 10 minutes). */
  probationMs: number;
  /** Starts tolerated while on probation before the model counts as crash-looping. */
  maxBoots?: number;
  /** Requests before the error-rate guard may judge. */
  minRequests?: number;
}

/** z for a one-sided 99.9% bound: a guard checked every 2 s on each of many devices must not trip on noise. */
const Z = 3.09;

/**
 * Whether `errors` out of `requests` is a spike over `previousRate`: the Wilson lower confidence
 * bound of the new rate must exceed both 25% and twice the old rate. Comparing the raw rate instead
 * reverted healthy 10%-error models on a 20-device fleet (6 errors in the first 20 requests happens
 * 1% of the time, and the check runs every 2 s), so the guard is the bound, not the point estimate.
 */
export function errorRateSpiked(errors: number, requests: number, previousRate: number): boolean {
  if (requests <= 0) return false;
  const p = errors / requests;
  const z2 = Z * Z;
  const centre = p + z2 / (2 * requests);
  const margin = Z * Math.sqrt((p * (1 - p)) / requests + z2 / (4 * requests * requests));
  const lower = (centre - margin) / (1 + z2 / requests);
  return lower > Math.max(0.25, 2 * previousRate);
}

export class ProbationGuard {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly maxBoots: number;
  private readonly minRequests: number;

  constructor(private readonly o: ProbationOptions) {
    this.maxBoots = o.maxBoots ?? 3;
    this.minRequests = o.minRequests ?? 20;
  }

  /** At agent start: count this boot against a model on probation; revert a crash-looping one. Returns the entry to load. */
  async atBoot(slot: string): Promise<InstalledEntry | null> {
    const state = await this.o.store.read(slot);
    const active = state.active;
    if (!active?.probation || active.probation.passedAt) return active;
    const boots = active.probation.boots + 1;
    if (boots >= this.maxBoots && state.previous) {
      this.o.logger.error(
        { slot, version: active.version, boots },
        'model crash-looped the agent; reverting to the previous one',
      );
      const next = await this.o.store.revert(slot, {
        code: 'MODEL_CRASH_LOOP',
        message: `the agent restarted ${boots} times while ${active.version} was on probation`,
      });
      return next.active;
    }
    await this.o.store.write(slot, {
      ...state,
      active: { ...active, probation: { ...active.probation, boots } },
    });
    return { ...active, probation: { ...active.probation, boots } };
  }

  /** Watch a model that just became active (or was loaded at start while still on probation). */
  watch(slot: string, entry: InstalledEntry): void {
    this.stopWatching(slot);
    if (!entry.probation || entry.probation.passedAt) return;
    const startedAt = Date.parse(entry.probation.startedAt);
    const base = this.o.metrics.total(slot);
    const previousRate = base.requests > 0 ? base.errors / base.requests : 0;
    const timer = setInterval(
      () => {
        this.check(slot, entry, base, previousRate, startedAt).catch((error: unknown) =>
          this.o.logger.error({ err: error, slot }, 'probation check failed'),
        );
      },
      Math.min(2000, this.o.probationMs),
    );
    timer.unref();
    this.timers.set(slot, timer);
  }

  private async check(
    slot: string,
    entry: InstalledEntry,
    base: { requests: number; errors: number },
    previousRate: number,
    startedAt: number,
  ): Promise<void> {
    const now = this.o.metrics.total(slot);
    const requests = now.requests - base.requests;
    const errors = now.errors - base.errors;
    const rate = requests > 0 ? errors / requests : 0;
    if (requests >= this.minRequests && errorRateSpiked(errors, requests, previousRate)) {
      this.stopWatching(slot);
      await this.revert(
        slot,
        'ERROR_RATE_SPIKE',
        `error rate ${(100 * rate).toFixed(1)}% over ${requests} requests (before: ${(100 * previousRate).toFixed(1)}%)`,
      );
      return;
    }
    if (Date.now() - startedAt >= this.o.probationMs) {
      this.stopWatching(slot);
      const state = await this.o.store.read(slot);
      if (state.active?.sha256 === entry.sha256 && state.active.probation) {
        await this.o.store.write(slot, {
          ...state,
          active: {
            ...state.active,
            probation: { ...state.active.probation, passedAt: new Date().toISOString() },
          },
        });
        this.o.logger.info({ slot, version: entry.version }, 'model passed probation');
      }
    }
  }

  private async revert(slot: string, code: string, message: string): Promise<void> {
    const state = await this.o.store.revert(slot, { code, message });
    this.o.logger.error({ slot, code, message }, 'reverting a model on probation');
    if (state.active) await this.o.reconciler.loadInstalled(slot, state.active);
    else this.o.models.remove(slot);
    this.o.reconciler.kick(); // re-evaluates the slot: reports rolled-back and does not retry it
  }

  stopWatching(slot: string): void {
    clearInterval(this.timers.get(slot));
    this.timers.delete(slot);
  }

  stop(): void {
    for (const slot of [...this.timers.keys()]) this.stopWatching(slot);
  }
}
