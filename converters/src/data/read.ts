/** Read user data for calibration, verification or drift references, by what the path is. */
import { readFile, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import type { ImagePreprocessing, TensorSpec } from '@edgefleet/bundle';
import { ConverterError } from '../errors.ts';
import { readImageFolder } from './images.ts';
import { npySamples, parseNpy } from './npy.ts';
import { parseCsvRows, parseJsonRows } from './rows.ts';
import type { SampleSet } from './samples.ts';

export interface ReadSamplesOptions {
  /** Needed for image folders (from flags, model metadata or the input shape). */
  preprocessing?: ImagePreprocessing;
  limit?: number;
}

/** A folder of images, a .csv, a .jsonl/.ndjson/.json (JSON lines) or a .npy file → samples. */
export async function readSamples(
  path: string,
  inputs: readonly TensorSpec[],
  options: ReadSamplesOptions = {},
): Promise<SampleSet> {
  const info = await stat(path).catch((cause) => {
    throw new ConverterError('DATA_INVALID', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  });
  const limit = (set: SampleSet): SampleSet =>
    options.limit && set.samples.length > options.limit
      ? { ...set, samples: set.samples.slice(0, options.limit) }
      : set;
  if (info.isDirectory()) {
    const input = inputs.find((i) => i.dtype === 'float32');
    if (!input || !options.preprocessing)
      throw new ConverterError(
        'DATA_INVALID',
        `${path} is a folder of images, but the model's input is not image-shaped; give --width/--height/--layout`,
      );
    if (inputs.length !== 1)
      throw new ConverterError(
        'DATA_INVALID',
        `image folders feed a model with one input; this one has ${inputs.length}`,
      );
    return readImageFolder(path, input, options.preprocessing, options);
  }
  const ext = extname(path).toLowerCase();
  const bytes = new Uint8Array(await readFile(path));
  if (ext === '.npy') return limit(npySamples(parseNpy(bytes), inputs, path));
  const text = new TextDecoder().decode(bytes);
  if (ext === '.csv') return limit(parseCsvRows(text, inputs, path));
  if (ext === '.jsonl' || ext === '.ndjson' || ext === '.json')
    return limit(parseJsonRows(text, inputs, path));
  throw new ConverterError(
    'DATA_INVALID',
    `${path}: unknown data format "${ext}" (use a folder of images, .csv, .jsonl or .npy)`,
  );
}
