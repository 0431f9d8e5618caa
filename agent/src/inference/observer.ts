import type { PlainTensor } from '@edgefleet/bundle';
import type { LoadedModel } from './loaded-models.ts';

/** Sees every inference (inputs, outputs, latency); the drift statistics collector is one. */
export interface InferenceObserver {
  observe(event: {
    model: string;
    version: string;
    inputs: Record<string, PlainTensor>;
    outputs: Record<string, PlainTensor> | null;
    latencyMs: number;
    error: Error | null;
  }): void;
  /** A model version started serving in its slot (at start, after a switch or a revert). */
  activated?(model: LoadedModel): void | Promise<void>;
  /** A model stopped being served. */
  removed?(name: string): void;
}
