/**
 * Images in, tensors out, the way the bundle's `preprocessing` says — the same rules as the agent's
 * image route (fill-resize, channel order, layout, (pixel·scale − mean)/std), so a picture gives the
 * same input in a browser as on a device. `pixelsToTensor` is pure; `imageToInput` draws any image
 * the browser can decode (File, Blob, <img>, ImageBitmap, ImageData, canvas) at the model's size.
 */
import type { ImagePreprocessing } from '@edgefleet/bundle';
import { WebError } from './errors.ts';

/** The bundle's image preprocessing (read-only arrays accepted). */
export type ImageSpec = Omit<ImagePreprocessing, 'mean' | 'std'> & {
  mean: readonly number[];
  std: readonly number[];
};

export interface ImageTensor {
  data: Float32Array;
  shape: number[];
}

/** RGBA pixels of exactly `pre.width`×`pre.height` → the model's input tensor. */
export function pixelsToTensor(rgba: ArrayLike<number>, pre: ImageSpec): ImageTensor {
  const { width, height } = pre;
  if (rgba.length !== width * height * 4)
    throw new WebError(
      'WEB_INPUT_INVALID',
      `expected ${width}x${height} RGBA pixels (${width * height * 4} values), got ${rgba.length}`,
    );
  const channels = pre.channels === 'GRAY' ? 1 : 3;
  const scale = pre.pixelRange === '0-255' ? 1 : 1 / 255;
  const data = new Float32Array(width * height * channels);
  for (let p = 0; p < width * height; p++) {
    const r = rgba[p * 4] as number;
    const g = rgba[p * 4 + 1] as number;
    const b = rgba[p * 4 + 2] as number;
    for (let c = 0; c < channels; c++) {
      let value: number;
      if (channels === 1) value = Math.round(0.2126 * r + 0.7152 * g + 0.0722 * b);
      else value = pre.channels === 'BGR' ? ([b, g, r][c] as number) : ([r, g, b][c] as number);
      const normalized = (value * scale - (pre.mean[c] ?? 0)) / (pre.std[c] ?? 1);
      data[pre.layout === 'NCHW' ? c * width * height + p : p * channels + c] = normalized;
    }
  }
  return {
    data,
    shape: pre.layout === 'NCHW' ? [1, channels, height, width] : [1, height, width, channels],
  };
}

/** Any browser image → the model's input tensor (stretched to the model's size, as the agent does). */
export async function imageToInput(
  source: ImageBitmapSource | ImageData,
  pre: ImageSpec,
): Promise<ImageTensor> {
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(source as ImageBitmapSource);
  } catch (cause) {
    throw new WebError('WEB_INPUT_INVALID', 'the browser could not decode that image', { cause });
  }
  const { width, height } = pre;
  const canvas =
    typeof OffscreenCanvas !== 'undefined'
      ? new OffscreenCanvas(width, height)
      : Object.assign(document.createElement('canvas'), { width, height });
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D | OffscreenCanvasRenderingContext2D | null;
  if (!ctx) throw new WebError('WEB_RUNTIME_UNAVAILABLE', 'no 2D canvas to resize the image with');
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  return pixelsToTensor(ctx.getImageData(0, 0, width, height).data, pre);
}

/** The k best (index, label, score) of a classifier output, best first. */
export function topK(
  scores: ArrayLike<number>,
  labels?: readonly string[],
  k = 5,
): { index: number; label: string | null; score: number }[] {
  return Array.from(scores, (score, index) => ({ index, label: labels?.[index] ?? null, score }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}
