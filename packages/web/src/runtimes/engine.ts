/** The contract every inference engine meets (onnxruntime-web, tfjs-tflite): open, run, close. */
import type { ArtifactEntry, TensorSpec } from '@edgefleet/bundle';
import type { ExecutionProvider } from '../plan.ts';
import type { Tensor } from '../tensors.ts';

export interface EngineSession {
  /** Outputs by the model's output names (the manifest's, where the engine's names differ). */
  run(inputs: Record<string, Tensor>): Promise<Record<string, Tensor>>;
  dispose(): Promise<void>;
}

export interface OpenRequest {
  bytes: Uint8Array;
  artifact: ArtifactEntry;
  executionProvider: ExecutionProvider;
  inputs: readonly TensorSpec[];
  outputs: readonly TensorSpec[];
}

export interface Engine {
  readonly name: string;
  open(request: OpenRequest): Promise<EngineSession>;
}
