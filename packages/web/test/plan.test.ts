import { type BundleManifest, bundleManifest } from '@edgefleet/bundle';
import { describe, expect, it } from 'vitest';
import type { Capabilities } from '../src/capabilities.ts';
import { WebError } from '../src/errors.ts';
import { planCandidates } from '../src/plan.ts';

const sha = (n: number) => n.toString(16).padStart(64, '0');
let next = 1;
const artifact = (file: string, target: string, precision: string, extra: Record<string, unknown> = {}) => ({
  file,
  target,
  runtime: target === 'tflite' || target === 'edgetpu' ? 'tflite' : 'onnxruntime',
  precision,
  sha256: sha(next++),
  size_bytes: 100,
  ...extra,
});

/** What `edgefleet convert --target all` packs, plus TFLite twins. */
const manifest: BundleManifest = bundleManifest.parse({
  format: 'edgefleet-bundle',
  formatVersion: 1,
  name: 'm',
  version: '1.0.0',
  createdAt: '2026-01-01T00:00:00Z',
  source: { format: 'onnx', sha256: sha(999), size_bytes: 1 },
  inputs: [{ name: 'x', shape: ['batch', 4], dtype: 'float32' }],
  outputs: [{ name: 'y', shape: ['batch', 2], dtype: 'float32' }],
  artifacts: [
    artifact('cpu/model-int8.onnx', 'cpu', 'int8', { fallback: 'cpu/model.onnx' }),
    artifact('cpu/model.onnx', 'cpu', 'fp32'),
    artifact('webgpu/model-fp16.onnx', 'webgpu', 'fp16', {
      requires: ['shader-f16'],
      fallback: 'cpu/model.onnx',
    }),
    artifact('tflite/model.tflite', 'tflite', 'int8'),
    artifact('tflite/model_edgetpu.tflite', 'edgetpu', 'int8', { requires: ['edgetpu'] }),
  ],
});

const caps = (webgpu: boolean, features: string[] = [], isFallbackAdapter = false): Capabilities => ({
  webgpu: webgpu
    ? {
        available: true,
        features,
        adapter: { vendor: 'v', architecture: 'a', description: '', isFallbackAdapter },
      }
    : { available: false, reason: 'no adapter', features: [] },
  cacheApi: true,
  crossOriginIsolated: false,
  hardwareConcurrency: 2,
  userAgent: 'test',
});
const order = (plan: ReturnType<typeof planCandidates>) =>
  plan.candidates.map((c) => `${c.artifact.file}@${c.executionProvider}`);

describe('artifact plan', () => {
  it('puts the fp16 WebGPU artifact first when the adapter has shader-f16', () => {
    expect(order(planCandidates(manifest, caps(true, ['shader-f16'])))).toEqual([
      'webgpu/model-fp16.onnx@webgpu',
      'cpu/model.onnx@webgpu',
      'cpu/model-int8.onnx@wasm',
      'cpu/model.onnx@wasm',
      'webgpu/model-fp16.onnx@wasm',
      'tflite/model.tflite@wasm',
    ]);
  });

  it('skips fp16 without shader-f16 and runs its fp32 fallback on WebGPU', () => {
    const plan = planCandidates(manifest, caps(true));
    expect(order(plan)[0]).toBe('cpu/model.onnx@webgpu');
    expect(plan.skipped).toContainEqual({
      file: 'webgpu/model-fp16.onnx',
      reason: 'WebGPU adapter lacks shader-f16',
    });
    expect(plan.skipped.find((s) => s.file === 'tflite/model_edgetpu.tflite')?.reason).toMatch(/Coral/);
  });

  it('treats an fp16 file without a declared requirement as needing shader-f16 anyway', () => {
    const handMade = bundleManifest.parse({
      ...manifest,
      artifacts: [artifact('webgpu/a.onnx', 'webgpu', 'fp16'), artifact('webgpu/b.onnx', 'webgpu', 'fp32')],
    });
    expect(order(planCandidates(handMade, caps(true)))[0]).toBe('webgpu/b.onnx@webgpu');
  });

  it('without WebGPU tries WASM, smallest CPU artifact first, then TFLite', () => {
    expect(order(planCandidates(manifest, caps(false)))).toEqual([
      'cpu/model-int8.onnx@wasm',
      'cpu/model.onnx@wasm',
      'webgpu/model-fp16.onnx@wasm',
      'tflite/model.tflite@wasm',
    ]);
  });

  it('puts a software adapter (SwiftShader) after WASM unless WebGPU is insisted on', () => {
    const swiftshader = caps(true, [], true);
    const plan = planCandidates(manifest, swiftshader);
    expect(order(plan)).toEqual([
      'cpu/model-int8.onnx@wasm',
      'cpu/model.onnx@wasm',
      'webgpu/model-fp16.onnx@wasm',
      'tflite/model.tflite@wasm',
      'cpu/model.onnx@webgpu',
    ]);
    expect(plan.notes[0]).toMatch(/software fallback/);
    expect(order(planCandidates(manifest, swiftshader, { device: 'webgpu' }))).toEqual([
      'cpu/model.onnx@webgpu',
    ]);
  });

  it('device "wasm" ignores an available adapter', () => {
    expect(order(planCandidates(manifest, caps(true, ['shader-f16']), { device: 'wasm' }))[0]).toBe(
      'cpu/model-int8.onnx@wasm',
    );
  });

  it('device "webgpu" never falls back to WASM and fails clearly without an adapter', () => {
    expect(order(planCandidates(manifest, caps(true), { device: 'webgpu' }))).toEqual([
      'cpu/model.onnx@webgpu',
    ]);
    expect(() => planCandidates(manifest, caps(false), { device: 'webgpu' })).toThrow(
      expect.objectContaining({ code: 'WEB_RUNTIME_UNAVAILABLE' }),
    );
  });

  it('tries a pinned artifact first even when the adapter lacks what it needs', () => {
    const plan = planCandidates(manifest, caps(true), { artifact: 'webgpu/model-fp16.onnx' });
    expect(order(plan).slice(0, 2)).toEqual(['webgpu/model-fp16.onnx@webgpu', 'cpu/model.onnx@webgpu']);
    expect(plan.candidates[0]?.reason).toBe('pinned by the caller');
    expect(plan.skipped.map((s) => s.file)).not.toContain('webgpu/model-fp16.onnx');
  });

  it('refuses to pin a file the version does not have, or one no browser can run', () => {
    for (const file of ['nope.onnx', 'tflite/model_edgetpu.tflite']) {
      const error = (() => {
        try {
          planCandidates(manifest, caps(true), { artifact: file });
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(WebError);
      expect(error).toMatchObject({ code: 'WEB_OPTIONS_INVALID', details: { field: 'artifact' } });
    }
  });

  it('gives an empty plan, with reasons, for an Edge-TPU-only version', () => {
    const coral = bundleManifest.parse({ ...manifest, artifacts: [manifest.artifacts[4]] });
    const plan = planCandidates(coral, caps(true));
    expect(plan.candidates).toEqual([]);
    expect(plan.skipped).toHaveLength(1);
  });
});
