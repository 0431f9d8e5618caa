/**
 * The local inference API (KServe Open Inference Protocol v2), called through `app.request()` on a
 * real onnxruntime-node session: answers match onnxruntime run directly, bad requests get a 400
 * that says what is wrong, and every call is counted and offered to the observers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey } from '@edgefleet/bundle';
import { mlpModel } from '@edgefleet/converters';
import type { Hono } from 'hono';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoadedModels } from '../src/inference/loaded-models.ts';
import { InferenceMetrics } from '../src/inference/metrics.ts';
import type { InferenceObserver } from '../src/inference/observer.ts';
import { createInferenceApp } from '../src/inference/server.ts';
import { makeBundle, quiet, serveBundle, type TestBundle } from './fixtures.ts';

let dir: string;
let bundle: TestBundle;
let app: Hono;
let models: LoadedModels;
let metrics: InferenceMetrics;
let direct: ort.InferenceSession;
const seen: Parameters<InferenceObserver['observe']>[0][] = [];

const post = (path: string, body: unknown) =>
  app.request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
const tensor = (data: unknown, shape = [2, 4], extra: Record<string, unknown> = {}) => ({
  inputs: [{ name: 'input', shape, datatype: 'FP32', data, ...extra }],
});
const rows = [0.1, -0.4, 2.5, 1, -3, 0.75, 0.5, -0.125];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ef-kserve-'));
  const key = await generateSigningKey();
  bundle = await makeBundle(key, {
    name: 'mlp',
    version: '2.3.4',
    model: mlpModel({ inputs: 4, hidden: [16], outputs: 3, seed: 7, batch: 'N', softmax: true }),
  });
  metrics = new InferenceMetrics();
  models = new LoadedModels(metrics, quiet);
  models.addObserver({ observe: (e) => seen.push(e) });
  app = createInferenceApp(models);
  direct = await ort.InferenceSession.create(bundle.files.get(bundle.artifact.file) as Uint8Array);
});
afterAll(async () => {
  await models?.closeAll();
  await direct?.release();
  await rm(dir, { recursive: true, force: true });
});

describe('health before any model is loaded', () => {
  it('is live but not ready', async () => {
    expect((await app.request('/v2/health/live')).status).toBe(200);
    const ready = await app.request('/v2/health/ready');
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ ready: false });
  });

  it('answers 404 for a model it does not have', async () => {
    expect((await app.request('/v2/models/mlp')).status).toBe(404);
    expect((await app.request('/v2/models/mlp/ready')).status).toBe(404);
    const r = await post('/v2/models/mlp/infer', tensor(rows));
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({ error: 'model "mlp" is not loaded here' });
  });
});

describe('with a model loaded', () => {
  beforeAll(async () => {
    await serveBundle(models, bundle, dir);
  });

  it('is ready, and the model is ready', async () => {
    expect((await app.request('/v2/health/ready')).status).toBe(200);
    const r = await app.request('/v2/models/mlp/ready');
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ name: 'mlp', ready: true });
  });

  it('describes the model: inputs and outputs with datatype and shape, and its version', async () => {
    const r = await app.request('/v2/models/mlp');
    expect(r.status).toBe(200);
    const meta = (await r.json()) as Record<string, unknown>;
    expect(meta).toMatchObject({
      name: 'mlp',
      versions: ['2.3.4'],
      platform: 'onnxruntime-cpu',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'output', datatype: 'FP32', shape: [-1, 3] }],
    });
  });

  it('answers an inference exactly as onnxruntime does when run directly', async () => {
    const r = await post('/v2/models/mlp/infer', { id: 'req-1', ...tensor(rows) });
    expect(r.status).toBe(200);
    const body = (await r.json()) as {
      model_name: string;
      model_version: string;
      id: string;
      outputs: { name: string; shape: number[]; datatype: string; data: number[] }[];
    };
    expect(body).toMatchObject({ model_name: 'mlp', model_version: '2.3.4', id: 'req-1' });
    const want = await direct.run({ input: new ort.Tensor('float32', Float32Array.from(rows), [2, 4]) });
    expect(body.outputs).toEqual([
      {
        name: 'output',
        shape: [2, 3],
        datatype: 'FP32',
        data: Array.from(want.output?.data as Float32Array),
      },
    ]);
  });

  it('accepts nested row-major data as KServe allows', async () => {
    const nested = [rows.slice(0, 4), rows.slice(4)];
    const flat = (await (await post('/v2/models/mlp/infer', tensor(rows))).json()) as { outputs: unknown };
    const r = await post('/v2/models/mlp/infer', tensor(nested));
    expect(r.status).toBe(200);
    expect(((await r.json()) as { outputs: unknown }).outputs).toEqual(flat.outputs);
  });

  it('returns only the outputs asked for', async () => {
    const r = await post('/v2/models/mlp/infer', { ...tensor(rows), outputs: [{ name: 'nothing' }] });
    expect(((await r.json()) as { outputs: unknown[] }).outputs).toEqual([]);
  });

  const badRequests: [string, unknown, string][] = [
    ['a body that is not JSON', '{"inputs": [', 'not valid JSON'],
    ['no inputs', { inputs: [] }, '"inputs" array'],
    [
      'an unknown input name',
      { inputs: [{ name: 'x', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3, 4] }] },
      'unknown input "x"',
    ],
    ['the wrong datatype', tensor([1, 2, 3, 4], [1, 4], { datatype: 'INT32' }), 'the model takes FP32'],
    ['an unknown datatype', tensor([1, 2, 3, 4], [1, 4], { datatype: 'FLOAT' }), 'unknown datatype'],
    ['the wrong number of dimensions', tensor([1, 2, 3, 4], [4]), 'has 1 dimensions'],
    ['the wrong feature dimension', tensor([1, 2, 3, 4, 5], [1, 5]), 'dimension 1 is 5, the model needs 4'],
    ['data that does not fill the shape', tensor([1, 2, 3], [1, 4]), '3 values for shape [1,4]'],
    ['a value that is not a number', tensor([1, 'two', 3, 4], [1, 4]), 'element 1 is not a number'],
    ['a negative dimension', tensor([1, 2, 3, 4], [-1, 4]), 'non-negative integers'],
  ];
  for (const [what, body, message] of badRequests) {
    it(`answers 400 naming the problem for ${what}`, async () => {
      const r = await post('/v2/models/mlp/infer', body);
      expect(r.status).toBe(400);
      const answer = (await r.json()) as { error: string };
      expect(answer.error).toContain(message);
    });
  }

  it('counts requests and latency for telemetry, and offers each call to the observers', async () => {
    metrics.take();
    seen.length = 0;
    for (let i = 0; i < 5; i++) expect((await post('/v2/models/mlp/infer', tensor(rows))).status).toBe(200);
    await post('/v2/models/mlp/infer', tensor([1], [1, 4])); // refused before inference: not counted
    const window = metrics.take();
    expect(window).toMatchObject({ requests: 5, errors: 0 });
    expect(window.latency_p50_ms).toBeGreaterThan(0);
    expect(window.latency_p95_ms).toBeGreaterThanOrEqual(window.latency_p50_ms as number);
    expect(seen).toHaveLength(5);
    expect(seen[0]).toMatchObject({ model: 'mlp', version: '2.3.4', error: null });
    expect(Array.from(seen[0]?.inputs.input?.data as Float32Array)).toEqual(
      Array.from(Float32Array.from(rows)),
    );
    expect(seen[0]?.outputs?.output?.shape).toEqual([2, 3]);
    expect(metrics.take()).toMatchObject({ requests: 0, latency_p50_ms: null });
  });

  it('keeps answering when an observer throws', async () => {
    models.addObserver({
      observe() {
        throw new Error('observer bug');
      },
    });
    expect((await post('/v2/models/mlp/infer', tensor(rows))).status).toBe(200);
  });

  it('answers 400 on the image route for a model without image preprocessing', async () => {
    const r = await app.request('/v2/models/mlp/infer/image', {
      method: 'POST',
      body: new Uint8Array([1, 2]),
    });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error).toContain('no image preprocessing');
  });
});
