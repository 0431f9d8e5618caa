/**
 * A folder of images as samples: decoded and resized with sharp (libvips), laid out NCHW or NHWC,
 * normalised as (pixel/255 − mean)/std. The preprocessing comes from flags, else the model's
 * metadata, else the input's shape (3 channels at dim 1 → NCHW, at the last dim → NHWC).
 */
import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { ImagePreprocessing, TensorSpec } from '@edgefleet/bundle';
import { imagePreprocessing } from '@edgefleet/bundle';
import { ConverterError } from '../errors.ts';
import type { Sample, SampleSet } from './samples.ts';

export const IMAGE_EXTENSIONS = new Set([
  '.jpg',
  '.jpeg',
  '.png',
  '.webp',
  '.gif',
  '.tif',
  '.tiff',
  '.bmp',
  '.avif',
]);

/** Preprocessing implied by an image input's shape, or undefined when the shape is not image-like. */
export function preprocessingFromShape(spec: TensorSpec): ImagePreprocessing | undefined {
  if (spec.shape.length !== 4) return undefined;
  const [, d1, d2, d3] = spec.shape;
  const num = (d: unknown) => (typeof d === 'number' && d > 0 ? d : undefined);
  if (d1 === 3 || d1 === 1) {
    const [h, w] = [num(d2), num(d3)];
    if (h && w)
      return imagePreprocessing.parse({
        kind: 'image',
        width: w,
        height: h,
        layout: 'NCHW',
        channels: d1 === 3 ? 'RGB' : 'GRAY',
      });
  }
  if (d3 === 3 || d3 === 1) {
    const [h, w] = [num(d1), num(d2)];
    if (h && w)
      return imagePreprocessing.parse({
        kind: 'image',
        width: w,
        height: h,
        layout: 'NHWC',
        channels: d3 === 3 ? 'RGB' : 'GRAY',
      });
  }
  return undefined;
}

/**
 * Preprocessing from ONNX metadata_props: `edgefleet.preprocessing` (JSON of the bundle schema), or
 * the common `mean` / `std` (comma-separated) keys applied on top of the shape's defaults.
 */
export function preprocessingFromMetadata(
  metadata: Record<string, string>,
  fromShape: ImagePreprocessing | undefined,
): ImagePreprocessing | undefined {
  const json = metadata['edgefleet.preprocessing'];
  if (json) {
    try {
      return imagePreprocessing.parse(JSON.parse(json));
    } catch (cause) {
      throw new ConverterError('DATA_INVALID', 'model metadata "edgefleet.preprocessing" is not valid', {
        cause,
      });
    }
  }
  if (!fromShape) return undefined;
  const list = (v: string | undefined) =>
    v
      ?.split(/[,\s]+/)
      .filter(Boolean)
      .map(Number);
  const mean = list(metadata.mean);
  const std = list(metadata.std);
  return {
    ...fromShape,
    ...(mean?.every(Number.isFinite) ? { mean } : {}),
    ...(std?.every(Number.isFinite) ? { std } : {}),
  };
}

/** Decode one image into the model's input layout. */
export async function imageToTensor(
  path: string | Uint8Array,
  pre: ImagePreprocessing,
): Promise<Float32Array> {
  const { default: sharp } = await import('sharp');
  const gray = pre.channels === 'GRAY';
  let pixels: Buffer;
  try {
    let img = sharp(path).rotate().removeAlpha().resize(pre.width, pre.height, { fit: 'fill' });
    img = gray ? img.grayscale() : img.toColourspace('srgb');
    pixels = await img.raw().toBuffer();
  } catch (cause) {
    throw new ConverterError(
      'DATA_INVALID',
      `cannot decode image ${typeof path === 'string' ? path : ''}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const channels = gray ? 1 : 3;
  const plane = pre.width * pre.height;
  const out = new Float32Array(plane * channels);
  for (let p = 0; p < plane; p++)
    for (let c = 0; c < channels; c++) {
      const source = pre.channels === 'BGR' ? channels - 1 - c : c;
      const raw = pixels[p * channels + source] as number;
      const v = ((pre.pixelRange === '0-255' ? raw : raw / 255) - (pre.mean[c] ?? 0)) / (pre.std[c] ?? 1);
      out[pre.layout === 'NCHW' ? c * plane + p : p * channels + c] = v;
    }
  return out;
}

/** Every image file of a folder (sorted by name, so runs are reproducible) as samples. */
export async function readImageFolder(
  dir: string,
  input: TensorSpec,
  pre: ImagePreprocessing,
  options: { limit?: number } = {},
): Promise<SampleSet> {
  const files = (await readdir(dir))
    .filter((f) => IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
    .sort()
    .slice(0, options.limit ?? Number.POSITIVE_INFINITY);
  if (files.length === 0)
    throw new ConverterError('DATA_INVALID', `no images (${[...IMAGE_EXTENSIONS].join(' ')}) in ${dir}`);
  const shape =
    pre.layout === 'NCHW'
      ? [1, pre.channels === 'GRAY' ? 1 : 3, pre.height, pre.width]
      : [1, pre.height, pre.width, pre.channels === 'GRAY' ? 1 : 3];
  const samples: Sample[] = [];
  for (const f of files)
    samples.push({ [input.name]: { dtype: 'float32', shape, data: await imageToTensor(join(dir, f), pre) } });
  return { samples, origin: 'images', description: `${files.length} images from ${dir}` };
}
