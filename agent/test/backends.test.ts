/**
 * The backend registry: the best available backend that can run an artifact loads it; when it
 * cannot start or fails to load, the next one does, and the reasons are kept for the hub.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey } from '@edgefleet/bundle';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackendRegistry, type InferenceBackend } from '../src/runtime/backend.ts';
import { onnxBackend } from '../src/runtime/onnx.ts';
import { makeBundle, type TestBundle } from './fixtures.ts';

let dir: string;
let bundle: TestBundle;
let path: string;

/** An accelerator backend as a plug-in would add it (this machine has no such hardware). */
function accelerator(o: { available: boolean; loadFails?: boolean; loads?: string[] }): InferenceBackend {
  return {
    name: 'test-accelerator',
    priority: 100,
    availability: async () =>
      o.available ? { available: true } : { available: false, reason: 'no device plugged in' },
    canRun: (a) => a.runtime === 'onnxruntime',
    async load() {
      o.loads?.push('test-accelerator');
      if (o.loadFails) throw new Error('delegate refused the graph');
      throw new Error('unreachable in these tests');
    },
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ef-backends-'));
  bundle = await makeBundle(await generateSigningKey(), { version: '1.0.0' });
  path = join(dir, 'model.onnx');
  await writeFile(path, bundle.files.get(bundle.artifact.file) as Uint8Array);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('backend registry', () => {
  it('reports each backend’s availability with the reason when it is missing', async () => {
    const registry = new BackendRegistry();
    registry.register(onnxBackend());
    registry.register(accelerator({ available: false }));
    expect(await registry.status()).toEqual([
      { name: 'test-accelerator', available: false, reason: 'no device plugged in' },
      { name: 'onnxruntime-cpu', available: true },
    ]);
  });

  it('falls back to onnxruntime when the preferred backend is unavailable', async () => {
    const registry = new BackendRegistry();
    const loads: string[] = [];
    registry.register(onnxBackend());
    registry.register(accelerator({ available: false, loads }));
    const session = await registry.load(path, bundle.artifact, bundle.manifest);
    expect(session.backend).toBe('onnxruntime-cpu');
    expect(loads).toEqual([]); // an unavailable backend is never asked to load
    expect(session.inputs.map((i) => i.name)).toEqual(['input']);
    expect(session.outputs.map((o) => o.name)).toEqual(['output']);
    const out = await session.run({ input: { dtype: 'float32', shape: [1, 4], data: new Float32Array(4) } });
    expect(out.output?.shape).toEqual([1, 3]);
    await session.close();
  });

  it('falls back when the preferred backend fails to load the model', async () => {
    const registry = new BackendRegistry();
    const loads: string[] = [];
    registry.register(accelerator({ available: true, loadFails: true, loads }));
    registry.register(onnxBackend());
    const session = await registry.load(path, bundle.artifact, bundle.manifest);
    expect(loads).toEqual(['test-accelerator']);
    expect(session.backend).toBe('onnxruntime-cpu');
    await session.close();
  });

  it('names every backend’s reason when none can run the artifact', async () => {
    const registry = new BackendRegistry();
    registry.register(accelerator({ available: true, loadFails: true }));
    registry.register(onnxBackend());
    const garbage = join(dir, 'garbage.onnx');
    await writeFile(garbage, 'not a model');
    const error = await registry.load(garbage, bundle.artifact, bundle.manifest).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('test-accelerator: delegate refused the graph');
    expect((error as Error).message).toContain('onnxruntime-cpu:');
  });

  it('says so when no backend handles the artifact’s runtime at all', async () => {
    const registry = new BackendRegistry();
    registry.register(onnxBackend());
    const tflite = { ...bundle.artifact, runtime: 'tflite' as const, target: 'tflite' as const };
    await expect(registry.load(path, tflite, bundle.manifest)).rejects.toThrow(
      'no backend runs tflite/tflite artifacts',
    );
  });
});
