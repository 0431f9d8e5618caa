/**
 * Prediction statistics for drift analysis: every inference of a model whose bundle carries a
 * reference profile is counted into that profile's bins (@edgefleet/drift's accumulator), and the
 * window is closed every `windowMs` or at `maxCount` predictions, whichever comes first. Closed
 * windows go out through the outbox like telemetry, so they survive restarts and outages; raw
 * inputs never leave the device. A model without a profile is not counted: the hub has nothing
 * to compare it with, and its request, error and latency figures already travel in telemetry.
 */
import { readFile } from 'node:fs/promises';
import {
  createWindowAccumulator,
  parseReferenceProfile,
  type ReferenceProfile,
  type WindowAccumulator,
} from '@edgefleet/drift';
import type { StatsWindowEnvelope } from '@edgefleet/protocol';
import type { Logger } from 'pino';
import type { LoadedModel } from './inference/loaded-models.ts';
import type { InferenceObserver } from './inference/observer.ts';

/** Where the installer stages a bundle's reference profile, beside the artifact. */
export const REFERENCE_PROFILE_FILE = 'reference-profile.json';

export interface DriftStatsOptions {
  /** Hand over a closed window (the agent numbers it and appends it to the outbox). */
  emit(window: Omit<StatsWindowEnvelope, 'seq'>): Promise<void>;
  /** Where a loaded model's version directory is, to read its profile from. */
  profilePath(model: LoadedModel): string;
  logger: Logger;
  /** Close a window after this long (default 60 s; the hub may change it in the desired state). */
  windowMs?: number;
  /** …or at this many predictions (default 5,000), so a busy device's windows stay comparable. */
  maxCount?: number;
}

interface Collecting {
  version: string;
  accumulator: WindowAccumulator;
  start: Date;
}

export class DriftStatsCollector implements InferenceObserver {
  private readonly collecting = new Map<string, Collecting>();
  private timer: NodeJS.Timeout | undefined;
  private windowMs: number;
  private readonly maxCount: number;
  private emitting = Promise.resolve();

  constructor(private readonly o: DriftStatsOptions) {
    this.windowMs = o.windowMs ?? 60_000;
    this.maxCount = o.maxCount ?? 5000;
  }

  start(): void {
    this.schedule(this.windowMs);
  }

  /** A new window length (from the desired state); open windows keep their start. */
  setWindowMs(ms: number): void {
    if (ms !== this.windowMs) this.schedule(ms);
  }

  /** A model became active: read its profile (if the bundle has one) and start counting for it. */
  async activated(model: LoadedModel): Promise<void> {
    const name = model.entry.name;
    const previous = this.collecting.get(name);
    if (previous?.version === model.entry.version) return;
    if (previous) this.close(name, previous);
    this.collecting.delete(name);
    const profile = await this.readProfile(model);
    if (!profile) return;
    this.collecting.set(name, {
      version: model.entry.version,
      accumulator: createWindowAccumulator(profile),
      start: new Date(),
    });
  }

  /** A model stopped being served: its open window is closed and sent. */
  removed(name: string): void {
    const current = this.collecting.get(name);
    if (current) this.close(name, current);
    this.collecting.delete(name);
  }

  observe(event: Parameters<InferenceObserver['observe']>[0]): void {
    const current = this.collecting.get(event.model);
    if (!current || current.version !== event.version) return;
    current.accumulator.add(event);
    if (current.accumulator.count >= this.maxCount) this.close(event.model, current);
  }

  /** Close every open window that has predictions, and wait until they are handed over. */
  async flush(): Promise<void> {
    for (const [name, current] of this.collecting) this.close(name, current);
    await this.emitting;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }

  private schedule(ms: number): void {
    this.windowMs = ms;
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      for (const [name, current] of this.collecting) this.close(name, current);
    }, ms);
    this.timer.unref();
  }

  private close(name: string, current: Collecting): void {
    if (current.accumulator.calls === 0) return;
    const end = new Date();
    const window = {
      model: name,
      version: current.version,
      start: current.start.toISOString(),
      end: end.toISOString(),
      window: current.accumulator.take(),
    };
    current.start = end;
    // Sequential, so seq numbers follow window order.
    this.emitting = this.emitting
      .then(() => this.o.emit(window))
      .catch((error: unknown) =>
        this.o.logger.warn({ err: error, model: name }, 'queueing a statistics window failed'),
      );
  }

  private async readProfile(model: LoadedModel): Promise<ReferenceProfile | undefined> {
    if (!model.manifest.referenceProfile) return undefined;
    try {
      return parseReferenceProfile(new Uint8Array(await readFile(this.o.profilePath(model))));
    } catch (error) {
      // A bundle from before the agent staged profiles, or a damaged file: serve, but say why no stats.
      this.o.logger.warn(
        { err: error, model: model.entry.name, version: model.entry.version },
        'reference profile unreadable; no drift statistics for this version',
      );
      return undefined;
    }
  }
}
