import type { PlainTensor } from '@edgefleet/bundle';

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
}
