/**
 * The model's I/O as callers see it (the manifest's inputs and outputs) versus an artifact's own I/O
 * (a TFLite file may take int8 under other names). Callers always speak the manifest's language;
 * these functions translate in both directions, quantizing and dequantizing where specs say how.
 */
import type { ArtifactEntry, BundleManifest, TensorSpec } from '@edgefleet/bundle';
import {
  type ModelInput,
  normalizeInputs,
  type Tensor,
  type TensorData,
  type TensorInput,
} from './tensors.ts';

/** The I/O specs an engine sees for an artifact. */
export function specsOf(manifest: BundleManifest, artifact: ArtifactEntry) {
  return { inputs: artifact.inputs ?? manifest.inputs, outputs: artifact.outputs ?? manifest.outputs };
}

/** Caller input (by manifest names) → engine tensors (by the artifact's names and dtypes). */
export function prepareInputs(
  input: ModelInput,
  manifest: BundleManifest,
  artifact: ArtifactEntry,
): Record<string, Tensor> {
  const own = artifact.inputs;
  if (!own || sameNames(own, manifest.inputs)) return normalizeInputs(input, own ?? manifest.inputs);
  // Rename record keys position by position: manifest input i is artifact input i.
  const isRecord =
    typeof input === 'object' &&
    input !== null &&
    !ArrayBuffer.isView(input) &&
    !Array.isArray(input) &&
    manifest.inputs.some((s) => s.name in input);
  if (!isRecord) return normalizeInputs(input, own);
  const renamed: Record<string, TensorData | TensorInput> = {};
  manifest.inputs.forEach((spec, i) => {
    const value = (input as Record<string, TensorData | TensorInput>)[spec.name];
    const target = own[i]?.name ?? spec.name;
    if (value !== undefined) renamed[target] = value;
  });
  return normalizeInputs(renamed, own);
}

/** Engine outputs (artifact names) → caller outputs (manifest names), dequantized to the manifest's float. */
export function presentOutputs(
  outputs: Record<string, Tensor>,
  manifest: BundleManifest,
  artifact: ArtifactEntry,
): Record<string, Tensor> {
  const own = artifact.outputs ?? manifest.outputs;
  const out: Record<string, Tensor> = {};
  const entries = Object.entries(outputs);
  entries.forEach(([name, tensor], i) => {
    const ownIndex = own.findIndex((s) => s.name === name);
    const index = ownIndex === -1 ? i : ownIndex;
    const spec = own[index];
    const wanted = entries.length === manifest.outputs.length ? manifest.outputs[index] : undefined;
    const q = spec?.quantization;
    if (q && wanted?.dtype === 'float32' && tensor.dtype !== 'float32') {
      const data = Float32Array.from(
        tensor.data as ArrayLike<number>,
        (v) => q.scale * (Number(v) - q.zeroPoint),
      );
      out[wanted.name] = { dtype: 'float32', shape: tensor.shape, data };
    } else {
      out[wanted?.name ?? name] = tensor;
    }
  });
  return out;
}

const sameNames = (a: readonly TensorSpec[], b: readonly TensorSpec[]) =>
  a.length === b.length && a.every((s, i) => s.name === b[i]?.name);
