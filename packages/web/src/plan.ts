/**
 * Which artifact of a model version to try, on which engine, in which order. Pure: the same manifest
 * and capabilities always give the same plan, and every artifact left out says why.
 *
 * With a hardware WebGPU adapter: WebGPU-target artifacts whose requirements the adapter meets
 * (fp16 needs `shader-f16`), then their declared fallbacks, then any fp32 ONNX file (fp32 runs on
 * every adapter). Then, or without WebGPU: ONNX files on WASM (wasm target, cpu target, the rest),
 * then TFLite files through tfjs-tflite. A software adapter (SwiftShader) is measured ~70x slower
 * than WASM on the same CPU, so in `auto` it only backs WASM up. Edge TPU files never run here.
 */
import type { ArtifactEntry, BundleManifest } from '@edgefleet/bundle';
import type { Capabilities } from './capabilities.ts';
import { WebError } from './errors.ts';

export type ExecutionProvider = 'webgpu' | 'wasm';
export type Engine = 'onnxruntime-web' | 'tfjs-tflite';
export type DevicePreference = 'auto' | 'webgpu' | 'wasm';

export interface Candidate {
  artifact: ArtifactEntry;
  engine: Engine;
  executionProvider: ExecutionProvider;
  /** Why this candidate is in the plan at this place. */
  reason: string;
}

export interface Plan {
  candidates: Candidate[];
  /** Artifacts left out entirely, with the reason. */
  skipped: { file: string; reason: string }[];
  /** Choices that affect the whole plan (e.g. a software WebGPU adapter put after WASM). */
  notes: string[];
}

export const SOFTWARE_ADAPTER =
  'the WebGPU adapter is a software fallback (e.g. SwiftShader): WASM is tried first; pass device "webgpu" to insist';

export interface PlanOptions {
  /** `webgpu` insists on WebGPU (no WASM fallback); `wasm` never touches WebGPU. Default `auto`. */
  device?: DevicePreference;
  /** Try this artifact file first, even if the adapter lacks a feature it requires. */
  artifact?: string;
}

// Smaller and faster first; fp16 halves memory traffic on GPUs, int8 QDQ uses int8 kernels on CPUs.
const WEBGPU_ORDER = ['fp16', 'int8-weight-only', 'mixed', 'fp32', 'int8', 'int8-dynamic', 'uint8'];
const CPU_ORDER = ['int8', 'int8-dynamic', 'int8-weight-only', 'uint8', 'fp32', 'mixed', 'fp16'];

const rank = (order: string[], a: ArtifactEntry) => {
  const i = order.indexOf(a.precision);
  return i === -1 ? order.length : i;
};
const byOrder = (order: string[]) => (a: ArtifactEntry, b: ArtifactEntry) => rank(order, a) - rank(order, b);

/** What an artifact needs from the adapter: its `requires`, and `shader-f16` for any fp16 file. */
export function gpuRequirements(a: ArtifactEntry): string[] {
  const needs = new Set(a.requires);
  if (a.precision === 'fp16') needs.add('shader-f16');
  return [...needs].sort();
}

/** Order the artifacts of `manifest` for this browser. Throws WEB_OPTIONS_INVALID for an unknown pin. */
export function planCandidates(
  manifest: BundleManifest,
  caps: Capabilities,
  options: PlanOptions = {},
): Plan {
  const device = options.device ?? 'auto';
  const candidates: Candidate[] = [];
  const skipped: Plan['skipped'] = [];
  const seen = new Set<string>();
  const add = (artifact: ArtifactEntry, executionProvider: ExecutionProvider, reason: string) => {
    const engine: Engine = artifact.runtime === 'tflite' ? 'tfjs-tflite' : 'onnxruntime-web';
    const key = `${artifact.file}|${engine === 'tfjs-tflite' ? 'wasm' : executionProvider}`;
    if (seen.has(key)) return;
    seen.add(key);
    candidates.push({
      artifact,
      engine,
      executionProvider: engine === 'tfjs-tflite' ? 'wasm' : executionProvider,
      reason,
    });
  };

  const runnable = manifest.artifacts.filter((a) => {
    if (a.target === 'edgetpu') {
      skipped.push({ file: a.file, reason: 'Edge TPU artifacts need the Coral delegate, not a browser' });
      return false;
    }
    return true;
  });
  const onnx = runnable.filter((a) => a.runtime === 'onnxruntime');
  const tflite = runnable.filter((a) => a.runtime === 'tflite');
  const useGpu = device !== 'wasm' && caps.webgpu.available;
  // In auto mode a software (fallback) adapter, e.g. SwiftShader, comes after WASM.
  const software = device === 'auto' && caps.webgpu.adapter?.isFallbackAdapter === true;
  const softwareNote = software ? ' (software adapter)' : '';
  const notes: string[] = [];

  if (options.artifact !== undefined) {
    const pinned = runnable.find((a) => a.file === options.artifact);
    if (!pinned) {
      const offered = runnable.map((a) => a.file).join(', ');
      throw new WebError(
        'WEB_OPTIONS_INVALID',
        `artifact "${options.artifact}" is not a runnable artifact of ${manifest.name}@${manifest.version} (offered: ${offered})`,
        { details: { field: 'artifact' } },
      );
    }
    add(
      pinned,
      useGpu && !software && pinned.runtime === 'onnxruntime' ? 'webgpu' : 'wasm',
      'pinned by the caller',
    );
  }

  const gpuChain = () => {
    const features = new Set(caps.webgpu.features);
    const gpuTargets = onnx.filter((a) => a.target === 'webgpu').sort(byOrder(WEBGPU_ORDER));
    for (const a of gpuTargets) {
      const missing = gpuRequirements(a).filter((f) => !features.has(f));
      if (missing.length > 0) {
        if (a.file !== options.artifact)
          skipped.push({ file: a.file, reason: `WebGPU adapter lacks ${missing.join(', ')}` });
        continue;
      }
      add(a, 'webgpu', `WebGPU artifact (${a.precision})${softwareNote}`);
    }
    for (const a of gpuTargets) {
      const fallback = onnx.find((f) => f.file === a.fallback);
      if (fallback && gpuRequirements(fallback).every((f) => features.has(f)))
        add(fallback, 'webgpu', `fallback of ${a.file} on WebGPU${softwareNote}`);
    }
    for (const a of onnx.filter((x) => x.precision === 'fp32'))
      add(a, 'webgpu', `fp32 ONNX runs on any WebGPU adapter${softwareNote}`);
  };
  const cpuChain = () => {
    const order = byOrder(CPU_ORDER);
    for (const a of onnx.filter((x) => x.target === 'wasm').sort(order))
      add(a, 'wasm', `WASM artifact (${a.precision})`);
    for (const a of onnx.filter((x) => x.target === 'cpu').sort(order))
      add(a, 'wasm', `CPU artifact (${a.precision}) on WASM`);
    for (const a of onnx.filter((x) => x.target !== 'wasm' && x.target !== 'cpu').sort(order))
      add(a, 'wasm', `${a.target} artifact (${a.precision}) on WASM`);
    for (const a of tflite.sort(order))
      add(a, 'wasm', `TFLite artifact (${a.precision}) through tfjs-tflite`);
  };

  if (device === 'webgpu') {
    if (!caps.webgpu.available)
      throw new WebError(
        'WEB_RUNTIME_UNAVAILABLE',
        `device "webgpu" was requested but ${caps.webgpu.reason ?? 'WebGPU is not available'}`,
      );
    gpuChain();
    for (const a of tflite)
      skipped.push({ file: a.file, reason: 'TFLite runs on WASM, and device "webgpu" was requested' });
  } else if (useGpu && !software) {
    gpuChain();
    cpuChain();
  } else {
    cpuChain();
    // A software adapter emulates the GPU on the CPU: WASM SIMD is faster there, so it only backs up WASM.
    if (useGpu) {
      notes.push(SOFTWARE_ADAPTER);
      gpuChain();
    }
  }
  return { candidates, skipped, notes };
}
