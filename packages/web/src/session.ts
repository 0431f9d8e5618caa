/**
 * A loaded model: `predict` in the manifest's terms, one run at a time (engines do not take
 * concurrent runs on one session), observers for statistics, and `backend` saying what runs and why.
 */
import type { BundleManifest, TensorSpec } from '@edgefleet/bundle';
import type { Active } from './activate.ts';
import { describeError, WebError } from './errors.ts';
import { imageToInput } from './image.ts';
import { prepareInputs, presentOutputs } from './io.ts';
import type { BackendInfo } from './model.ts';
import type { ModelInput, Tensor } from './tensors.ts';

/** What observers (the stats reporter) see of each prediction. */
export interface PredictionEvent {
  /** The caller's inputs after validation (by the artifact's names). */
  inputs: Record<string, Tensor>;
  outputs?: Record<string, Tensor>;
  latency_ms: number;
  error?: { code: string; message: string };
}

export type Observer = (event: PredictionEvent) => void;

/** Whether this model's predictions reach the hub as stats windows, and as which device. */
export interface ReportingStatus {
  enabled: boolean;
  deviceId?: string;
  reason?: string;
  /** Close the current window and send what is pending now (a no-op when disabled). */
  flush(): Promise<{ sent: number; pending: number; error?: string }>;
}

type Activated = Active & { index: number };

interface ModelInit {
  manifest: BundleManifest;
  active: Activated;
  backend: BackendInfo;
  now: () => number;
  fallBack(
    failed: Activated,
    error: unknown,
    input: ModelInput,
  ): Promise<{ active: Activated; backend: BackendInfo }>;
}

/** A model running in this browser. */
export class EdgefleetModel {
  readonly manifest: BundleManifest;
  #active: Activated;
  #backend: BackendInfo;
  #init: ModelInit;
  #queue: Promise<unknown> = Promise.resolve();
  #observers = new Set<Observer>();
  #runs = 0;
  #disposed = false;
  #disposers: (() => unknown)[] = [];
  /** Set by `load()` when the model came from a hub. */
  reporting: ReportingStatus = {
    enabled: false,
    reason: 'loaded without a hub',
    flush: async () => ({ sent: 0, pending: 0 }),
  };

  constructor(init: ModelInit) {
    this.manifest = init.manifest;
    this.#active = init.active;
    this.#backend = init.backend;
    this.#init = init;
  }

  get name(): string {
    return this.manifest.name;
  }
  get version(): string {
    return this.manifest.version;
  }
  /** The model's inputs as callers pass them. */
  get inputs(): TensorSpec[] {
    return this.manifest.inputs;
  }
  get outputs(): TensorSpec[] {
    return this.manifest.outputs;
  }
  /** What runs, why, and what failed before it. */
  get backend(): BackendInfo {
    return this.#backend;
  }

  /** Run the model; resolves with outputs by the manifest's output names. */
  predict(input: ModelInput): Promise<Record<string, Tensor>> {
    const run = this.#queue.then(() => this.#predict(input));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Run the model on an image (File, Blob, <img>, ImageBitmap, ImageData, canvas), preprocessed as
   * the bundle's `preprocessing` says; for single-input models that declare image preprocessing.
   */
  async predictImage(source: ImageBitmapSource | ImageData): Promise<Record<string, Tensor>> {
    const pre = this.manifest.preprocessing;
    const [input, ...more] = this.manifest.inputs;
    if (!pre || !input || more.length > 0)
      throw new WebError(
        'WEB_OPTIONS_INVALID',
        `${this.name}@${this.version} declares no image preprocessing for a single input; pass tensors to predict()`,
      );
    return this.predict({ [input.name]: await imageToInput(source, pre) });
  }

  /** Be told about every prediction; returns the function that stops it. */
  observe(observer: Observer): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  /** Run `fn` when the model is disposed (timers, listeners of the reporting path). */
  onDispose(fn: () => unknown): void {
    this.#disposers.push(fn);
  }

  /** Release the engine session; later predictions fail with WEB_MODEL_DISPOSED. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await this.#queue;
    for (const fn of this.#disposers) {
      try {
        await fn();
      } catch {
        // a failing disposer (e.g. a last stats flush to an unreachable hub) must not keep the session
      }
    }
    await this.#active.session.dispose();
  }

  async #predict(input: ModelInput): Promise<Record<string, Tensor>> {
    if (this.#disposed) throw new WebError('WEB_MODEL_DISPOSED', `${this.name}@${this.version} was disposed`);
    const { manifest } = this;
    const feeds = prepareInputs(input, manifest, this.#active.candidate.artifact); // caller errors: no fallback
    const started = this.#init.now();
    let raw: Record<string, Tensor>;
    try {
      raw = await this.#active.session.run(feeds);
    } catch (error) {
      if (this.#runs > 0 || this.#active.probe !== 'none') {
        this.#notify({ inputs: feeds, latency_ms: this.#init.now() - started, error: describeError(error) });
        throw new WebError('WEB_RUN_FAILED', `inference failed: ${describeError(error).message}`, {
          cause: error,
        });
      }
      // Never ran before: this is the first-run failure (e.g. fp16 without shader-f16) to fall back from.
      const failed = this.#active;
      await failed.session.dispose().catch(() => undefined);
      const next = await this.#init.fallBack(failed, error, input);
      this.#active = next.active;
      this.#backend = next.backend;
      raw =
        next.active.outputs ??
        (await next.active.session.run(prepareInputs(input, manifest, next.active.candidate.artifact)));
    }
    this.#runs++;
    const outputs = presentOutputs(raw, manifest, this.#active.candidate.artifact);
    this.#notify({ inputs: feeds, outputs, latency_ms: this.#init.now() - started });
    return outputs;
  }

  #notify(event: PredictionEvent): void {
    for (const observer of this.#observers) {
      try {
        observer(event);
      } catch {
        // A failing observer must not break inference.
      }
    }
  }
}
