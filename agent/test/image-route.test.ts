/**
 * The image route: a JPEG or PNG body is decoded, resized and laid out as the bundle's
 * preprocessing says (channel order, NCHW/NHWC, mean/std, pixel range), then run; classifiers get
 * their top labels. Checked against pixel values computed by hand.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, type ImagePreprocessing, type SigningKeyFile } from '@edgefleet/bundle';
import { buildModel } from '@edgefleet/converters';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoadedModels } from '../src/inference/loaded-models.ts';
import { InferenceMetrics } from '../src/inference/metrics.ts';
import { createInferenceServer } from '../src/inference/server.ts';
import { makeBundle, quiet, serveBundle } from './fixtures.ts';

let dir: string;
let key: SigningKeyFile;
let models: LoadedModels;
let server: Server;
let baseUrl: string;

const W = 4;
const H = 4;
/** A 4×4 RGB image where every pixel and channel has its own value. */
const pixels = Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 5 + 7) % 256);
const pixel = (x: number, y: number, c: number) => pixels[(y * W + x) * 3 + c] as number;

/** output = 2 × input, so the response shows exactly the tensor the route built. */
const doubler = (shape: number[]) =>
  buildModel({
    inputs: [{ name: 'image', shape }],
    outputs: [{ name: 'twice', shape }],
    initializers: [{ name: 'two', dims: [1], data: Float32Array.from([2]) }],
    nodes: [{ op: 'Mul', inputs: ['image', 'two'], outputs: ['twice'] }],
  });

/** Mean of each channel of an NHWC image: a three-class "which colour dominates" classifier. */
const channelMeans = buildModel({
  inputs: [{ name: 'image', shape: [1, H, W, 3] }],
  outputs: [{ name: 'scores', shape: [1, 3] }],
  nodes: [{ op: 'ReduceMean', inputs: ['image'], outputs: ['scores'], attrs: { axes: [1, 2], keepdims: 0 } }],
});

async function serve(name: string, model: Uint8Array, preprocessing: ImagePreprocessing, labels?: string[]) {
  const bundle = await makeBundle(key, {
    name,
    version: '1.0.0',
    model,
    preprocessing,
    ...(labels ? { labels } : {}),
  });
  await serveBundle(models, bundle, dir);
}

const postImage = (model: string, body: Uint8Array, type = 'image/png') =>
  fetch(`${baseUrl}/v2/models/${model}/infer/image`, {
    method: 'POST',
    headers: { 'content-type': type },
    body: body as Uint8Array<ArrayBuffer>,
  });

interface Answer {
  model_name: string;
  model_version: string;
  outputs: { name: string; shape: number[]; datatype: string; data: number[] }[];
  top?: { index: number; label: string | null; score: number }[];
}

let png: Uint8Array;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ef-image-'));
  key = await generateSigningKey();
  models = new LoadedModels(new InferenceMetrics(), quiet);
  server = createInferenceServer(models);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  png = new Uint8Array(
    await sharp(Buffer.from(pixels), { raw: { width: W, height: H, channels: 3 } })
      .png()
      .toBuffer(),
  );
  const base = { kind: 'image', width: W, height: H, pixelRange: '0-1' } as const;
  await serve('nchw-rgb', doubler([1, 3, H, W]), {
    ...base,
    layout: 'NCHW',
    channels: 'RGB',
    mean: [0.5, 0.25, 0],
    std: [0.5, 0.25, 2],
  });
  await serve('nhwc-bgr', doubler([1, H, W, 3]), {
    ...base,
    layout: 'NHWC',
    channels: 'BGR',
    mean: [0, 0, 0],
    std: [1, 1, 1],
    pixelRange: '0-255',
  });
  await serve('gray', doubler([1, 1, H, W]), {
    ...base,
    layout: 'NCHW',
    channels: 'GRAY',
    mean: [0],
    std: [1],
  });
  await serve(
    'colour',
    channelMeans,
    { ...base, layout: 'NHWC', channels: 'RGB', mean: [0, 0, 0], std: [1, 1, 1] },
    ['red', 'green', 'blue'],
  );
});
afterAll(async () => {
  await new Promise((done) => server?.close(done));
  await models?.closeAll();
  await rm(dir, { recursive: true, force: true });
});

describe('image route', () => {
  it('lays out an RGB image as NCHW with mean/std applied per channel', async () => {
    const r = await postImage('nchw-rgb', png);
    expect(r.status).toBe(200);
    const answer = (await r.json()) as Answer;
    expect(answer).toMatchObject({ model_name: 'nchw-rgb', model_version: '1.0.0' });
    const out = answer.outputs[0];
    expect(out?.shape).toEqual([1, 3, H, W]);
    const mean = [0.5, 0.25, 0];
    const std = [0.5, 0.25, 2];
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const want = (2 * (pixel(x, y, c) / 255 - (mean[c] as number))) / (std[c] as number);
          expect(out?.data[c * H * W + y * W + x]).toBeCloseTo(want, 5);
        }
    expect(answer.top).toBeUndefined(); // not a classifier: no labels, no top-k
  });

  it('lays out a BGR image as NHWC in the 0–255 range', async () => {
    const answer = (await (await postImage('nhwc-bgr', png)).json()) as Answer;
    const out = answer.outputs[0];
    expect(out?.shape).toEqual([1, H, W, 3]);
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++)
        for (let c = 0; c < 3; c++) expect(out?.data[(y * W + x) * 3 + c]).toBe(2 * pixel(x, y, 2 - c));
  });

  it('turns a grey image into one channel', async () => {
    const grey = Uint8Array.from({ length: W * H }, (_, i) => i * 16);
    const rgb = Uint8Array.from({ length: W * H * 3 }, (_, i) => grey[Math.floor(i / 3)] as number);
    const body = await sharp(Buffer.from(rgb), { raw: { width: W, height: H, channels: 3 } })
      .png()
      .toBuffer();
    const answer = (await (await postImage('gray', new Uint8Array(body))).json()) as Answer;
    expect(answer.outputs[0]?.shape).toEqual([1, 1, H, W]);
    for (const [i, v] of (answer.outputs[0]?.data ?? []).entries())
      expect(v).toBeCloseTo((2 * (grey[i] as number)) / 255, 2);
  });

  it('resizes a larger JPEG and names the top classes from the bundle labels', async () => {
    const jpeg = await sharp({
      create: { width: 64, height: 48, channels: 3, background: { r: 20, g: 40, b: 230 } },
    })
      .jpeg({ quality: 95 })
      .toBuffer();
    const r = await postImage('colour', new Uint8Array(jpeg), 'image/jpeg');
    expect(r.status).toBe(200);
    const answer = (await r.json()) as Answer;
    expect(answer.top?.map((t) => t.label)).toEqual(['blue', 'green', 'red']);
    expect(answer.top?.[0]?.index).toBe(2);
    expect(answer.top?.[0]?.score).toBeCloseTo(230 / 255, 1);
    expect(answer.outputs[0]?.shape).toEqual([1, 3]);
  });

  it('answers 400 for a body that is not an image', async () => {
    const r = await postImage('colour', new TextEncoder().encode('definitely not a picture'));
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error).toContain('not an image');
  });

  it('answers 404 for a model it does not have', async () => {
    expect((await postImage('nothing', png)).status).toBe(404);
  });
});
