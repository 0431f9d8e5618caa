/**
 * Targets beyond ONNX Runtime (e.g. `edgetpu`, built in converters/src/edgetpu) plug into the same
 * pipeline: they register a builder, which gets the runnable fp32 model, the calibration and
 * held-out samples and the fp32 reference outputs, and returns its artifacts with their reports.
 * The pipeline then packs them with the rest (smoke test, signature, conversion report).
 */
import type { PlainTensor } from '@edgefleet/bundle';
import type { ModelProto } from 'onnx-buf';
import type { SampleSet } from '../data/samples.ts';
import type { OnnxSummary } from '../onnx/summary.ts';
import type { ArtifactReport, BuiltArtifact, ConvertOptions } from './types.ts';

export interface TargetContext {
  /** The fp32 model onnxruntime runs (opset raised when the source was older than 7). */
  model: ModelProto;
  sourceBytes: Uint8Array;
  summary: OnnxSummary;
  calibration: SampleSet;
  verification: SampleSet;
  /** fp32 outputs for each verification sample, in order. */
  reference: Record<string, PlainTensor>[];
  options: ConvertOptions;
}

export interface TargetBuild {
  /** Artifacts to pack (their report status 'packaged' or 'forced'). */
  artifacts: BuiltArtifact[];
  /** Every report, including rejected artifacts (with their reason). */
  reports: ArtifactReport[];
  warnings?: string[];
}

export type TargetBuilder = (ctx: TargetContext) => Promise<TargetBuild>;

const builders = new Map<string, TargetBuilder>();

/** Add a conversion target (`edgefleet convert --target NAME`, and part of `--target all`). */
export function registerTarget(name: string, builder: TargetBuilder): void {
  builders.set(name, builder);
}

export function targetBuilder(name: string): TargetBuilder | undefined {
  return builders.get(name);
}

/** Every target `convert` can build: the ONNX Runtime ones, then registered ones. */
export function knownTargets(): string[] {
  return ['cpu', 'webgpu', ...builders.keys()];
}
