/** The image route's preprocessing, as the bundle describes it: decode, resize, channel order, layout, normalize. */
import type { ImagePreprocessing, PlainTensor } from '@edgefleet/bundle';
import { AgentError } from '../errors.ts';

export async function imageToTensor(bytes: Uint8Array, pre: ImagePreprocessing): Promise<PlainTensor> {
  const channels = pre.channels === 'GRAY' ? 1 : 3;
  // Loaded on first use: libvips costs ~28 MB of memory that agents without images never need.
  const { default: sharp } = await import('sharp');
  let pixels: Buffer;
  try {
    let image = sharp(bytes, { limitInputPixels: 64 * 1024 * 1024 })
      .resize(pre.width, pre.height, { fit: 'fill' })
      .removeAlpha();
    image = channels === 1 ? image.grayscale() : image.toColorspace('srgb');
    pixels = await image.raw().toBuffer();
  } catch (cause) {
    throw new AgentError('BAD_INPUT', 'the body is not an image sharp can decode (JPEG, PNG, WebP, …)', {
      cause,
    });
  }
  const { width, height } = pre;
  const data = new Float32Array(width * height * channels);
  const scale = pre.pixelRange === '0-255' ? 1 : 1 / 255;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const source = pre.channels === 'BGR' ? channels - 1 - c : c;
        const value = (pixels[(y * width + x) * channels + source] ?? 0) * scale;
        const normalized = (value - (pre.mean[c] ?? 0)) / (pre.std[c] ?? 1);
        const index =
          pre.layout === 'NCHW' ? c * width * height + y * width + x : (y * width + x) * channels + c;
        data[index] = normalized;
      }
    }
  }
  return {
    dtype: 'float32',
    shape: pre.layout === 'NCHW' ? [1, channels, height, width] : [1, height, width, channels],
    data,
  };
}

/** Top-k (label, score) pairs from a classifier output. */
export function topK(
  scores: ArrayLike<number>,
  labels: readonly string[] | undefined,
  k = 5,
): { index: number; label: string | null; score: number }[] {
  return Array.from(scores, (score, index) => ({ index, label: labels?.[index] ?? null, score }))
    .sort((a, b) => b.score - a.score)
    .slice(0, k);
}
