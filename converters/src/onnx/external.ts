/**
 * External tensor data (`data_location = EXTERNAL`): the bytes live in side files named by
 * `external_data` {location, offset, length}. Converted artifacts are single files, so the data is
 * read in and inlined. Locations are untrusted: only plain relative paths inside the model's folder.
 */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { type ModelProto, TensorProto_DataLocation } from 'onnx-buf';
import { ConverterError } from '../errors.ts';
import { visitGraphs } from './graph.ts';
import { parseOnnx } from './io.ts';
import { DT, elementCount } from './tensor.ts';

const bytesPerElement: Record<number, number> = {
  [DT.FLOAT]: 4,
  [DT.UINT8]: 1,
  [DT.INT8]: 1,
  [DT.INT16]: 2,
  [DT.INT32]: 4,
  [DT.INT64]: 8,
  [DT.BOOL]: 1,
  [DT.FLOAT16]: 2,
  [DT.DOUBLE]: 8,
};

/** Does any tensor of the model keep its data outside the .onnx file? */
export function hasExternalData(model: ModelProto): boolean {
  let found = false;
  if (model.graph)
    visitGraphs(model.graph, (g) => {
      if (g.initializer.some((t) => t.dataLocation === TensorProto_DataLocation.EXTERNAL)) found = true;
    });
  return found;
}

function safeLocation(location: string, tensor: string): string {
  const clean = normalize(location);
  if (!location || isAbsolute(location) || clean.split(sep).includes('..') || location.includes('\0'))
    throw new ConverterError(
      'ONNX_INVALID',
      `tensor "${tensor}" points its external data at "${location}", outside the model's folder`,
    );
  return clean;
}

/**
 * Read every external tensor through `read(location)` and put its bytes inline.
 * Offsets and lengths are checked against the file and the tensor's shape.
 */
export async function inlineExternalData(
  model: ModelProto,
  read: (location: string) => Promise<Uint8Array>,
): Promise<void> {
  if (!model.graph) return;
  const files = new Map<string, Promise<Uint8Array>>();
  const tensors: NonNullable<ModelProto['graph']>['initializer'] = [];
  visitGraphs(model.graph, (g) => {
    for (const t of g.initializer) if (t.dataLocation === TensorProto_DataLocation.EXTERNAL) tensors.push(t);
  });
  for (const t of tensors) {
    const entry = Object.fromEntries(t.externalData.map((e) => [e.key, e.value]));
    const location = safeLocation(entry.location ?? '', t.name);
    const offset = Number(entry.offset ?? 0);
    const size = bytesPerElement[t.dataType];
    if (!size)
      throw new ConverterError('ONNX_UNSUPPORTED', `external tensor "${t.name}" has type ${t.dataType}`);
    const expected = elementCount(t.dims) * size;
    const length = entry.length === undefined ? expected : Number(entry.length);
    if (!Number.isSafeInteger(offset) || offset < 0 || length !== expected)
      throw new ConverterError(
        'ONNX_INVALID',
        `external tensor "${t.name}": offset ${entry.offset}, length ${entry.length} do not fit its shape`,
      );
    if (!files.has(location))
      files.set(
        location,
        read(location).catch((cause) => {
          throw new ConverterError(
            'ONNX_INVALID',
            `external data file "${location}" of tensor "${t.name}" cannot be read`,
            { cause },
          );
        }),
      );
    const file = await (files.get(location) as Promise<Uint8Array>);
    if (offset + length > file.byteLength)
      throw new ConverterError(
        'ONNX_INVALID',
        `external tensor "${t.name}" runs past the end of "${location}" (${file.byteLength} bytes)`,
      );
    t.rawData = file.slice(offset, offset + length);
    t.externalData = [];
    t.dataLocation = TensorProto_DataLocation.DEFAULT;
  }
}

/** Read an .onnx file and inline its external data from files next to it. */
export async function loadOnnxFile(path: string): Promise<ModelProto> {
  const model = parseOnnx(
    await readFile(path).catch((cause) => {
      throw new ConverterError('ONNX_INVALID', `cannot read ${path}: ${(cause as Error).message}`, { cause });
    }),
  );
  const dir = dirname(path);
  await inlineExternalData(model, async (location) => new Uint8Array(await readFile(join(dir, location))));
  return model;
}
