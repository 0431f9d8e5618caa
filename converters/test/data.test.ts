/**
 * Calibration and reference data from users: image folders (sharp, resize/normalise from flags,
 * metadata or shape), CSV and JSON-lines rows, .npy arrays, the synthetic fallback; bad data gives
 * DATA_INVALID naming the place. Then an .onnx file converted with an image folder end to end.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, imagePreprocessing, publicKeyOf, unpackBundle } from '@edgefleet/bundle';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildModel,
  convertOnnxFile,
  npySamples,
  parseCsvRows,
  parseJsonRows,
  parseNpy,
  preprocessingFromMetadata,
  preprocessingFromShape,
  readImageFolder,
  readSamples,
  seededRandom,
  syntheticSamples,
} from '../src/index.ts';

const temp = await mkdtemp(join(tmpdir(), 'ef-data-'));
afterAll(() => rm(temp, { recursive: true, force: true }));

const vector = { name: 'x', shape: ['N', 3] as (number | string)[], dtype: 'float32' as const };
const image = { name: 'image', shape: [1, 3, 16, 16] as (number | string)[], dtype: 'float32' as const };

function npy(dtype: string, shape: number[], data: ArrayBufferView, fortran = false): Uint8Array {
  let header = `{'descr': '${dtype}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((header.length + 10) % 64)) + '\n';
  const head = new Uint8Array(10 + header.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(head.buffer).setUint16(8, header.length, true);
  head.set(new TextEncoder().encode(header), 10);
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Uint8Array(head.length + body.length);
  out.set(head);
  out.set(body, head.length);
  return out;
}

describe('image folders', () => {
  const dir = join(temp, 'images');
  beforeAll(async () => {
    await mkdir(dir);
    await sharp({ create: { width: 20, height: 10, channels: 3, background: { r: 255, g: 0, b: 0 } } })
      .png()
      .toFile(join(dir, 'a-red.png'));
    await sharp({
      create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 255, alpha: 1 } },
    })
      .jpeg()
      .toFile(join(dir, 'b-blue.jpg'));
    await writeFile(join(dir, 'notes.txt'), 'not an image');
  });

  it('derives the layout from the input shape', () => {
    expect(preprocessingFromShape(image)).toMatchObject({
      width: 16,
      height: 16,
      layout: 'NCHW',
      channels: 'RGB',
    });
    expect(preprocessingFromShape({ ...image, shape: [1, 32, 24, 3] })).toMatchObject({
      width: 24,
      height: 32,
      layout: 'NHWC',
    });
    expect(preprocessingFromShape(vector)).toBeUndefined();
  });

  it('takes mean/std (or a whole preprocessing) from the model metadata', () => {
    const base = preprocessingFromShape(image);
    expect(
      preprocessingFromMetadata({ mean: '0.485,0.456,0.406', std: '0.229, 0.224, 0.225' }, base),
    ).toMatchObject({
      mean: [0.485, 0.456, 0.406],
      std: [0.229, 0.224, 0.225],
    });
    const json = JSON.stringify({ kind: 'image', width: 4, height: 4, layout: 'NHWC', channels: 'BGR' });
    expect(preprocessingFromMetadata({ 'edgefleet.preprocessing': json }, base)).toMatchObject({
      width: 4,
      channels: 'BGR',
    });
    expect(() => preprocessingFromMetadata({ 'edgefleet.preprocessing': '{"kind":1}' }, base)).toThrow(
      /not valid/,
    );
  });

  it('resizes, lays out and normalises every image (sorted by name; other files ignored)', async () => {
    const pre = imagePreprocessing.parse({
      kind: 'image',
      width: 4,
      height: 4,
      layout: 'NCHW',
      channels: 'RGB',
      mean: [0.5, 0.5, 0.5],
      std: [0.5, 0.5, 0.5],
    });
    const set = await readImageFolder(dir, image, pre);
    expect(set.origin).toBe('images');
    expect(set.samples).toHaveLength(2);
    const red = set.samples[0]?.image?.data as Float32Array;
    expect(set.samples[0]?.image?.shape).toEqual([1, 3, 4, 4]);
    expect([red[0], red[16], red[32]]).toEqual([1, -1, -1]); // R plane, G plane, B plane
    const bgr = await readImageFolder(dir, image, { ...pre, layout: 'NHWC', channels: 'BGR' });
    const blue = bgr.samples[1]?.image?.data as Float32Array;
    expect(blue[0]).toBeCloseTo(1, 1); // blue first in BGR, interleaved
    const gray = await readImageFolder(dir, image, { ...pre, channels: 'GRAY', mean: [0], std: [1] });
    expect(gray.samples[0]?.image?.shape).toEqual([1, 1, 4, 4]);
  });

  it('an empty folder or an undecodable image is DATA_INVALID', async () => {
    const empty = join(temp, 'empty');
    await mkdir(empty);
    const pre = preprocessingFromShape(image) as NonNullable<ReturnType<typeof preprocessingFromShape>>;
    await expect(readImageFolder(empty, image, pre)).rejects.toMatchObject({ code: 'DATA_INVALID' });
    const broken = join(temp, 'broken');
    await mkdir(broken);
    await writeFile(join(broken, 'x.png'), 'definitely not a png');
    await expect(readImageFolder(broken, image, pre)).rejects.toMatchObject({
      code: 'DATA_INVALID',
      message: expect.stringContaining('x.png'),
    });
  });
});

describe('rows and arrays', () => {
  it('CSV: a header line is skipped, each row is one sample of batch 1', () => {
    const set = parseCsvRows('a,b,c\n1,2,3\n4,5,6\n', [vector]);
    expect(set.samples.map((s) => [s.x?.shape, Array.from(s.x?.data as Float32Array)])).toEqual([
      [
        [1, 3],
        [1, 2, 3],
      ],
      [
        [1, 3],
        [4, 5, 6],
      ],
    ]);
    expect(() => parseCsvRows('1,2,3\n4,5\n', [vector])).toThrow(/line 2: 2 values, input "x" needs 3/);
    expect(() => parseCsvRows('1,2,3\n4,x,6\n', [vector])).toThrow(/line 2/);
  });

  it('JSON lines: arrays, objects keyed by input name, or named features', () => {
    expect(parseJsonRows('[1,2,3]\n[[4],[5],[6]]', [vector]).samples).toHaveLength(2);
    const two = [
      { name: 'a', shape: [1, 2] as (number | string)[], dtype: 'float32' as const },
      { name: 'b', shape: [1] as (number | string)[], dtype: 'int64' as const },
    ];
    const keyed = parseJsonRows('{"a":[1,2],"b":[7]}', two).samples[0];
    expect(keyed?.b?.data).toEqual(BigInt64Array.of(7n));
    expect(
      Array.from(parseJsonRows('{"h":1,"w":2,"d":3}', [vector]).samples[0]?.x?.data as Float32Array),
    ).toEqual([1, 2, 3]);
    expect(() => parseJsonRows('[1,2,3]\n{oops', [vector])).toThrow(/line 2 is not JSON/);
  });

  it('.npy: the first axis indexes samples (float32 and float64); bad files are DATA_INVALID', () => {
    const f4 = npy('<f4', [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6));
    const set = npySamples(parseNpy(f4), [vector]);
    expect(set.samples.map((s) => Array.from(s.x?.data as Float32Array))).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(
      npySamples(parseNpy(npy('<f8', [1, 3], Float64Array.of(0.5, 1, 2))), [vector]).samples,
    ).toHaveLength(1);
    for (const bad of [
      npy('<f4', [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6), true),
      f4.slice(0, f4.length - 4),
      new TextEncoder().encode('NUMPY? no'),
      npy('<f4', [2, 4], new Float32Array(8)),
    ]) {
      expect(() => npySamples(parseNpy(bad), [vector])).toThrow(
        expect.objectContaining({ code: 'DATA_INVALID' }),
      );
    }
  });

  it('readSamples picks the reader by what the path is, and names unknown formats', async () => {
    await writeFile(join(temp, 'rows.csv'), '1,2,3\n');
    await writeFile(join(temp, 'rows.jsonl'), '[1,2,3]\n[1,1,1]\n');
    await writeFile(join(temp, 'rows.npy'), npy('<f4', [3, 3], new Float32Array(9)));
    await writeFile(join(temp, 'rows.parquet'), 'PAR1');
    expect((await readSamples(join(temp, 'rows.csv'), [vector])).origin).toBe('csv');
    expect((await readSamples(join(temp, 'rows.jsonl'), [vector])).samples).toHaveLength(2);
    expect((await readSamples(join(temp, 'rows.npy'), [vector], { limit: 2 })).samples).toHaveLength(2);
    await expect(readSamples(join(temp, 'rows.parquet'), [vector])).rejects.toMatchObject({
      code: 'DATA_INVALID',
    });
    await expect(readSamples(join(temp, 'nope.csv'), [vector])).rejects.toMatchObject({
      code: 'DATA_INVALID',
    });
  });

  it('synthetic samples repeat exactly for a seed and follow an image preprocessing', () => {
    const a = syntheticSamples([image], 3, { seed: 9 });
    const b = syntheticSamples([image], 3, { seed: 9 });
    expect(a.samples[2]?.image?.data).toEqual(b.samples[2]?.image?.data);
    const pre = imagePreprocessing.parse({
      kind: 'image',
      width: 16,
      height: 16,
      layout: 'NCHW',
      channels: 'RGB',
      mean: [0.5, 0.5, 0.5],
      std: [0.25, 0.25, 0.25],
    });
    const values = Array.from(
      syntheticSamples([image], 1, { preprocessing: pre }).samples[0]?.image?.data as Float32Array,
    );
    expect(Math.min(...values)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...values)).toBeLessThanOrEqual(2);
  });
});

describe('convert an .onnx file with an image folder', () => {
  it('calibrates on the images with the shape-derived preprocessing, and records it in the bundle', async () => {
    const dir = join(temp, 'calib');
    await mkdir(dir);
    const rand = seededRandom(4);
    for (let i = 0; i < 30; i++) {
      const raw = Buffer.from(Array.from({ length: 24 * 24 * 3 }, () => Math.floor(rand() * 256)));
      await sharp(raw, { raw: { width: 24, height: 24, channels: 3 } })
        .png()
        .toFile(join(dir, `img-${String(i).padStart(2, '0')}.png`));
    }
    const w = Float32Array.from({ length: 8 * 3 * 9 }, () => rand() - 0.5);
    const model = buildModel({
      inputs: [{ name: 'image', shape: [1, 3, 16, 16] }],
      outputs: [{ name: 'y', shape: [1, 8, 14, 14] }],
      nodes: [{ op: 'Conv', inputs: ['image', 'w'], outputs: ['y'], attrs: { kernel_shape: [3, 3] } }],
      initializers: [{ name: 'w', dims: [8, 3, 3, 3], data: w }],
    });
    await writeFile(join(temp, 'conv.onnx'), model);
    const key = await generateSigningKey();
    const { bundle, result, reference } = await convertOnnxFile({
      input: join(temp, 'conv.onnx'),
      name: 'conv',
      version: '1.0.0',
      key,
      targets: ['cpu'],
      quantize: 'static',
      calibrationPath: dir,
      referencePath: dir,
      preprocessing: { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] },
    });
    expect(result.report.calibration).toMatchObject({ origin: 'images', samples: 24, synthetic: false });
    expect(result.report.verification).toMatchObject({ origin: 'images', samples: 6 });
    expect(result.report.warnings.join()).not.toMatch(/NO CALIBRATION DATA/);
    expect(reference?.samples).toBe(30);
    const unpacked = await unpackBundle(bundle.bytes, { trustedKeys: [publicKeyOf(key)] });
    expect(unpacked.manifest.preprocessing).toMatchObject({
      width: 16,
      height: 16,
      layout: 'NCHW',
      mean: [0.5, 0.5, 0.5],
    });
    expect(unpacked.manifest.artifacts.map((a) => a.precision)).toEqual(['int8', 'fp32']);
  });
});
