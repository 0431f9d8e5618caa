/**
 * From an .onnx file on disk to a signed bundle: load (with external data), work out the image
 * preprocessing (flags > model metadata > input shape), read calibration and reference data,
 * convert, verify and pack. What `edgefleet convert` runs.
 */
import type { ImagePreprocessing, PackedBundle, SigningKeyFile } from '@edgefleet/bundle';
import { preprocessingFromMetadata, preprocessingFromShape } from '../data/images.ts';
import { readSamples } from '../data/read.ts';
import { loadOnnxFile } from '../onnx/external.ts';
import { summarizeModel } from '../onnx/summary.ts';
import { packConversion } from '../package/onnx-bundle.ts';
import { type ConversionResult, convertModel } from './pipeline.ts';
import { buildReference, type ReferenceResult } from './reference.ts';
import type { ConvertOptions } from './types.ts';

export interface ConvertFileOptions extends Omit<ConvertOptions, 'calibration' | 'verification'> {
  input: string;
  name: string;
  version: string;
  key: SigningKeyFile;
  calibrationPath?: string;
  referencePath?: string;
  /** Overrides of the image preprocessing (else from metadata or the input's shape). */
  preprocessing?: Partial<ImagePreprocessing>;
  /** At most this many data samples are read. */
  limit?: number;
  labels?: string[];
  description?: string;
}

export interface ConvertFileResult {
  bundle: PackedBundle;
  result: ConversionResult;
  reference?: ReferenceResult['report'];
  preprocessing?: ImagePreprocessing;
}

/** Convert an .onnx file into a signed bundle. */
export async function convertOnnxFile(o: ConvertFileOptions): Promise<ConvertFileResult> {
  const model = await loadOnnxFile(o.input);
  const summary = summarizeModel(model);
  const metadata = Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]));
  const imageInput = summary.inputs.length === 1 ? summary.inputs[0] : undefined;
  const fromShape = imageInput ? preprocessingFromShape(imageInput) : undefined;
  const base = preprocessingFromMetadata(metadata, fromShape);
  const flags = Object.fromEntries(Object.entries(o.preprocessing ?? {}).filter(([, v]) => v !== undefined));
  const preprocessing =
    base || Object.keys(flags).length
      ? ({
          kind: 'image',
          layout: 'NCHW',
          channels: 'RGB',
          mean: [0, 0, 0],
          std: [1, 1, 1],
          pixelRange: '0-1',
          ...base,
          ...flags,
        } as ImagePreprocessing)
      : undefined;
  const read = (path: string) =>
    readSamples(path, summary.inputs, {
      ...(preprocessing ? { preprocessing } : {}),
      ...(o.limit ? { limit: o.limit } : {}),
    });
  const calibration = o.calibrationPath ? await read(o.calibrationPath) : undefined;
  const result = await convertModel(model, { ...o, ...(calibration ? { calibration } : {}) });
  let reference: ReferenceResult | undefined;
  if (o.referencePath) {
    reference = await buildReference(result.sourceBytes, await read(o.referencePath), {
      inputs: summary.inputs,
      outputs: summary.outputs,
      ...(o.labels ? { labels: o.labels } : {}),
    });
    result.report.notes.push(
      reference.report.status === 'built'
        ? `drift reference profile built from ${reference.report.description}`
        : `drift reference profile ${reference.report.status}: ${reference.report.reason}`,
    );
  }
  const bundle = await packConversion(result, {
    name: o.name,
    version: o.version,
    key: o.key,
    ...(o.description ? { description: o.description } : {}),
    ...(o.labels ? { labels: o.labels } : {}),
    ...(preprocessing ? { preprocessing } : {}),
    ...(reference?.profile ? { referenceProfile: reference.profile } : {}),
  });
  return {
    bundle,
    result,
    ...(reference ? { reference: reference.report } : {}),
    ...(preprocessing ? { preprocessing } : {}),
  };
}
