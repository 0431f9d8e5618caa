/** Reading the ONNX backend test data (model + test_data_set_N/*.pb) for conformance tests. */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBinary } from '@bufbuild/protobuf';
import type { PlainTensor } from '@edgefleet/bundle';
import { TensorProtoSchema } from 'onnx-buf';
import { sharedDir } from '../../../test/support/services.ts';
import { onnxDtypes } from '../../src/onnx/summary.ts';
import { DT, readFloats, readInts } from '../../src/onnx/tensor.ts';

export const backendDir = (): string => join(sharedDir(), 'conformance/onnx-backend');

/** A serialized TensorProto file as a plain tensor (float, int64, int32, uint8, int8, bool). */
export async function readTensorFile(path: string): Promise<{ name: string; tensor: PlainTensor }> {
  const t = fromBinary(TensorProtoSchema, new Uint8Array(await readFile(path)));
  const shape = t.dims.map(Number);
  const dtype = onnxDtypes[t.dataType];
  let tensor: PlainTensor;
  if (t.dataType === DT.FLOAT) tensor = { dtype: 'float32', shape, data: readFloats(t) };
  else if (t.dataType === DT.INT64)
    tensor = { dtype: 'int64', shape, data: BigInt64Array.from(readInts(t), (v) => BigInt(v)) };
  else if (t.dataType === DT.INT32) tensor = { dtype: 'int32', shape, data: Int32Array.from(readInts(t)) };
  else if (t.dataType === DT.UINT8 || t.dataType === DT.BOOL)
    tensor = { dtype: dtype ?? 'uint8', shape, data: Uint8Array.from(readInts(t)) };
  else if (t.dataType === DT.INT8) tensor = { dtype: 'int8', shape, data: Int8Array.from(readInts(t)) };
  else throw new Error(`unsupported test tensor type ${t.dataType} in ${path}`);
  return { name: t.name, tensor };
}

export interface BackendCase {
  name: string;
  model: Uint8Array;
  inputs: PlainTensor[];
  outputs: PlainTensor[];
}

/** One backend test: model bytes and the first data set (inputs and expected outputs, in order). */
export async function readBackendCase(group: string, test: string): Promise<BackendCase> {
  const dir = join(backendDir(), group, test);
  const data = join(dir, 'test_data_set_0');
  const files = (await readdir(data)).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const read = async (prefix: string) =>
    Promise.all(
      files
        .filter((f) => f.startsWith(prefix))
        .map(async (f) => (await readTensorFile(join(data, f))).tensor),
    );
  return {
    name: `${group}/${test}`,
    model: new Uint8Array(await readFile(join(dir, 'model.onnx'))),
    inputs: await read('input_'),
    outputs: await read('output_'),
  };
}
