/**
 * The local inference API (KServe Open Inference Protocol v2), served over real HTTP by the agent's
 * server on a real onnxruntime-node session: answers match onnxruntime run directly, bad requests
 * get a 400 that says what is wrong, and every call is counted and offered to the observers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey } from '@edgefleet/bundle';
import { buildModel, mlpModel } from '@edgefleet/converters';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoadedModels } from '../src/inference/loaded-models.ts';
import { InferenceMetrics } from '../src/inference/metrics.ts';
import type { InferenceObserver } from '../src/inference/observer.ts';
import { createInferenceServer } from '../src/inference/server.ts';
import { makeBundle, quiet, serveBundle, type TestBundle } from './fixtures.ts';

let dir: string;
let bundle: TestBundle;
let server: Server;
let base: string;
let models: LoadedModels;
let metrics: InferenceMetrics;
let direct: ort.InferenceSession;
const seen: Parameters<InferenceObserver['observe']>[0][] = [];

const app = { request: (path: string, init?: RequestInit) => fetch(`${base}${path}`, init) };
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

/**
 * A POST written piece by piece with node:http (fetch cannot declare a length it does not send);
 * `end: false` leaves the body unfinished, as a client that is still sending.
 */
const rawPost = (
  url: string,
  o: { headers?: Record<string, string>; chunks: string[]; end: boolean },
): Promise<{ status: number; body: string }> =>
  new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', ...(o.headers ? { headers: o.headers } : {}) });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    for (const c of o.chunks) req.write(c);
    if (o.end) req.end();
  });

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
  server = createInferenceServer(models);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  direct = await ort.InferenceSession.create(bundle.files.get(bundle.artifact.file) as Uint8Array);
});
afterAll(async () => {
  await new Promise((done) => server?.close(done));
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

/** A request of the binary tensor data extension: a JSON header, then raw tensor bytes. */
function binaryRequest(header: unknown, blobs: Uint8Array[], headerLength?: string) {
  const json = Buffer.from(JSON.stringify(header));
  return app.request('/v2/models/mlp/infer', {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': headerLength ?? String(json.length),
    },
    body: Buffer.concat([json, ...blobs]),
  });
}
const bytesOf = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
const binaryInput = (data: Float32Array, shape = [2, 4], size = data.byteLength) => ({
  name: 'input',
  shape,
  datatype: 'FP32',
  parameters: { binary_data_size: size },
});

/** Split a response of the binary extension into its JSON header and its outputs' bytes. */
async function readBinary(r: Response) {
  const body = Buffer.from(await r.arrayBuffer());
  const length = Number(r.headers.get('inference-header-content-length'));
  const header = JSON.parse(body.subarray(0, length).toString()) as {
    model_name: string;
    outputs: {
      name: string;
      shape: number[];
      datatype: string;
      data?: number[];
      parameters?: { binary_data_size: number };
    }[];
  };
  let offset = length;
  const tensors: Record<string, Float32Array> = {};
  for (const o of header.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) continue;
    tensors[o.name] = new Float32Array(Uint8Array.from(body.subarray(offset, offset + size)).buffer);
    offset += size;
  }
  return { header, tensors, trailing: body.length - offset };
}

describe('binary tensor data extension', () => {
  const input = Float32Array.from(rows);
  let jsonOutputs: { name: string; shape: number[]; datatype: string; data: number[] }[];

  beforeAll(async () => {
    const r = await post('/v2/models/mlp/infer', tensor(rows));
    jsonOutputs = ((await r.json()) as { outputs: typeof jsonOutputs }).outputs;
  });

  it('says so in the server metadata', async () => {
    const meta = (await (await app.request('/v2')).json()) as { extensions: string[] };
    expect(meta.extensions).toContain('binary_tensor_data');
  });

  it('takes a binary input and answers exactly as the JSON request does', async () => {
    const r = await binaryRequest({ id: 'b-1', inputs: [binaryInput(input)] }, [bytesOf(input)]);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('application/json');
    expect(r.headers.get('inference-header-content-length')).toBeNull();
    const body = (await r.json()) as { id: string; outputs: unknown };
    expect(body.id).toBe('b-1');
    expect(body.outputs).toEqual(jsonOutputs);
  });

  it('reads the binary data wherever the JSON header ends (aligned or not)', async () => {
    for (const pad of [0, 1, 2, 3]) {
      const json = `${JSON.stringify({ inputs: [binaryInput(input)] })}${' '.repeat(pad)}`;
      const r = await app.request('/v2/models/mlp/infer', {
        method: 'POST',
        headers: { 'inference-header-content-length': String(Buffer.byteLength(json)) },
        body: Buffer.concat([Buffer.from(json), bytesOf(input)]),
      });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { outputs: unknown }).outputs).toEqual(jsonOutputs);
    }
  });

  it('returns binary outputs when asked for all of them, with the same values as JSON', async () => {
    const r = await post('/v2/models/mlp/infer', {
      ...tensor(rows),
      parameters: { binary_data_output: true },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    const { header, tensors, trailing } = await readBinary(r);
    expect(trailing).toBe(0);
    expect(header.outputs).toEqual([
      { name: 'output', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } },
    ]);
    expect(Array.from(tensors.output as Float32Array)).toEqual(jsonOutputs[0]?.data);
  });

  it('round-trips binary in and binary out per output, equal to onnxruntime run directly', async () => {
    const r = await binaryRequest(
      { inputs: [binaryInput(input)], outputs: [{ name: 'output', parameters: { binary_data: true } }] },
      [bytesOf(input)],
    );
    expect(r.status).toBe(200);
    const { header, tensors } = await readBinary(r);
    expect(header.model_name).toBe('mlp');
    const want = await direct.run({ input: new ort.Tensor('float32', Float32Array.from(rows), [2, 4]) });
    expect(tensors.output).toEqual(want.output?.data);
  });

  it('lets an output ask for JSON when binary is the default', async () => {
    const r = await post('/v2/models/mlp/infer', {
      ...tensor(rows),
      parameters: { binary_data_output: true },
      outputs: [{ name: 'output', parameters: { binary_data: false } }],
    });
    expect(r.headers.get('inference-header-content-length')).toBeNull();
    expect(((await r.json()) as { outputs: unknown }).outputs).toEqual(jsonOutputs);
  });

  it('counts binary requests and gives the observers the same input tensor as JSON', async () => {
    metrics.take();
    seen.length = 0;
    expect((await binaryRequest({ inputs: [binaryInput(input)] }, [bytesOf(input)])).status).toBe(200);
    expect(metrics.take()).toMatchObject({ requests: 1, errors: 0 });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.inputs.input).toMatchObject({ dtype: 'float32', shape: [2, 4] });
    expect(Array.from(seen[0]?.inputs.input?.data as Float32Array)).toEqual(Array.from(input));
  });

  const bytes = bytesOf(input);
  const malformed: [string, () => Promise<Response>, string][] = [
    [
      'a binary_data_size that does not match shape × datatype',
      () => binaryRequest({ inputs: [binaryInput(input, [2, 4], 28)] }, [bytes.subarray(0, 28)]),
      'binary_data_size 28 does not match shape [2,4] of FP32 (needs 8 × 4 = 32 bytes)',
    ],
    [
      'a binary_data_size beyond the end of the body',
      () => binaryRequest({ inputs: [binaryInput(input)] }, [bytes.subarray(0, 16)]),
      'binary_data_size 32 goes beyond the end of the body (16 bytes',
    ],
    [
      'bytes no input accounts for',
      () => binaryRequest({ inputs: [binaryInput(input)] }, [bytes, new Uint8Array(4)]),
      '4 bytes of binary data after the JSON header that no input',
    ],
    [
      'a header length beyond the body',
      () => binaryRequest({ inputs: [binaryInput(input)] }, [bytes], '100000'),
      'Inference-Header-Content-Length 100000 is beyond the end of the body',
    ],
    [
      'a header length that is not a number',
      () => binaryRequest({ inputs: [binaryInput(input)] }, [bytes], 'twelve'),
      'Inference-Header-Content-Length must be a non-negative integer',
    ],
    [
      'a header length that cuts the JSON short',
      () => binaryRequest({ inputs: [binaryInput(input)] }, [bytes], '20'),
      'JSON header (the first 20 bytes',
    ],
    [
      'a binary_data_size without any binary data',
      () => post('/v2/models/mlp/infer', { inputs: [binaryInput(input)] }),
      'the request has no binary data (send the JSON header',
    ],
    [
      'both data and binary_data_size',
      () => binaryRequest({ inputs: [{ ...binaryInput(input), data: rows }] }, [bytes]),
      'has both "data" and parameters.binary_data_size',
    ],
    [
      'a binary_data_size that is not an integer',
      () => binaryRequest({ inputs: [binaryInput(input, [2, 4], -4 as number)] }, [bytes]),
      'binary_data_size must be a non-negative integer',
    ],
    [
      'a binary_data flag that is not a boolean',
      () =>
        post('/v2/models/mlp/infer', {
          ...tensor(rows),
          outputs: [{ name: 'output', parameters: { binary_data: 'yes' } }],
        }),
      'output output: parameters.binary_data must be true or false',
    ],
  ];
  for (const [what, send, message] of malformed) {
    it(`answers 400 naming the problem for ${what}, before inference`, async () => {
      metrics.take();
      const r = await send();
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: string }).error).toContain(message);
      expect(metrics.take().requests).toBe(0);
    });
  }
});

describe('routes and limits of the tensor route', () => {
  it('serves the versioned route for the version it runs, 404 for another', async () => {
    const ok = await post('/v2/models/mlp/versions/2.3.4/infer', tensor(rows));
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { model_version: string }).model_version).toBe('2.3.4');
    const other = await post('/v2/models/mlp/versions/9.9.9/infer', tensor(rows));
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: string }).error).toContain('version "9.9.9" is not loaded');
  });

  it('answers 413 to a body declared over 64 MB without reading it', async () => {
    const answer = await rawPost(`${base}/v2/models/mlp/infer`, {
      headers: { 'content-length': String(65 * 1024 * 1024) },
      chunks: ['{"inputs": ['],
      end: false,
    });
    expect(answer.status).toBe(413);
    expect(JSON.parse(answer.body)).toEqual({ error: 'request body over 64 MB' });
  });

  it('answers 413 to a chunked body that grows over the limit, and serves one within it', async () => {
    const small = createInferenceServer(models, { maxBodyBytes: 4096 });
    await new Promise<void>((ok) => small.listen(0, '127.0.0.1', ok));
    const url = `http://127.0.0.1:${(small.address() as AddressInfo).port}/v2/models/mlp/infer`;
    // No content-length: the body goes chunked.
    const chunked = (chunks: string[]) => rawPost(url, { chunks, end: true });
    try {
      const json = JSON.stringify(tensor(rows));
      const within = await chunked([json.slice(0, 20), json.slice(20)]);
      expect(within.status).toBe(200);
      const over = await chunked([json, ' '.repeat(3000), ' '.repeat(3000)]);
      expect(over.status).toBe(413);
      expect(JSON.parse(over.body)).toEqual({ error: 'request body over 4096 bytes' });
    } finally {
      await new Promise((done) => small.close(done));
    }
  });
});

describe('binary data for several inputs', () => {
  /** difference = a − b: the answer shows which bytes went to which input. */
  const subtract = buildModel({
    inputs: [
      { name: 'a', shape: [1, 3] },
      { name: 'b', shape: [1, 3] },
    ],
    outputs: [{ name: 'difference', shape: [1, 3] }],
    nodes: [{ op: 'Sub', inputs: ['a', 'b'], outputs: ['difference'] }],
  });
  const a = Float32Array.from([10, 20, 30]);
  const b = Float32Array.from([1, 2, 3]);
  const spec = (name: string, data?: Float32Array) => ({
    name,
    shape: [1, 3],
    datatype: 'FP32',
    ...(data ? { data: Array.from(data) } : { parameters: { binary_data_size: 12 } }),
  });
  const call = (inputs: unknown[], blobs: Float32Array[]) => {
    const json = Buffer.from(JSON.stringify({ inputs }));
    return app.request('/v2/models/subtract/infer', {
      method: 'POST',
      headers: { 'inference-header-content-length': String(json.length) },
      body: Buffer.concat([json, ...blobs.map(bytesOf)]),
    });
  };

  beforeAll(async () => {
    const key = await generateSigningKey();
    await serveBundle(
      models,
      await makeBundle(key, { name: 'subtract', version: '1.0.0', model: subtract }),
      dir,
    );
  });

  it('reads the binary data in the order the inputs are listed', async () => {
    const r = await call([spec('b'), spec('a')], [b, a]);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { outputs: { data: number[] }[] };
    expect(body.outputs[0]?.data).toEqual([9, 18, 27]);
  });

  it('mixes a JSON input and a binary one', async () => {
    const r = await call([spec('a', a), spec('b')], [b]);
    expect(r.status).toBe(200);
    expect(((await r.json()) as { outputs: { data: number[] }[] }).outputs[0]?.data).toEqual([9, 18, 27]);
  });

  it('answers 400 when the second input runs past the end of the body', async () => {
    const r = await call([spec('a'), spec('b')], [a, b.subarray(0, 2)]);
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error).toContain(
      'input b: binary_data_size 12 goes beyond the end of the body (8 bytes',
    );
  });
});
