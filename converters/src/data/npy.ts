/**
 * NumPy `.npy` files (format 1.0–3.0, C order, little-endian numeric dtypes): the first axis
 * indexes samples, the rest must match one sample of the model's (single) input.
 */
import type { TensorSpec } from '@edgefleet/bundle';
import { ConverterError } from '../errors.ts';
import { f16BitsToF32 } from '../onnx/tensor.ts';
import { type Sample, type SampleSet, sampleShape } from './samples.ts';

export interface NpyArray {
  shape: number[];
  /** Values as float64 (int64 beyond 2^53 is not expected in model inputs). */
  values: Float64Array;
}

const bad = (why: string) => new ConverterError('DATA_INVALID', `not a readable .npy file: ${why}`);

/** Parse .npy bytes. */
export function parseNpy(bytes: Uint8Array): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (bytes.byteLength < 10 || magic.some((m, i) => bytes[i] !== m))
    throw bad('missing the \\x93NUMPY magic');
  const major = bytes[6] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  if (start + headerLength > bytes.byteLength) throw bad('header runs past the end');
  const header = new TextDecoder().decode(bytes.subarray(start, start + headerLength));
  const descr = /'descr':\s*'([<>|=]?)([a-z])(\d+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header);
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeText) throw bad('header lacks descr, fortran_order or shape');
  if (fortran[1] === 'True') throw bad('Fortran order is not supported; save with np.ascontiguousarray');
  if (descr[1] === '>') throw bad('big-endian data is not supported');
  const shape = (shapeText[1] as string)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad('bad shape');
  const count = shape.reduce((a, b) => a * b, 1);
  const kind = `${descr[2]}${descr[3]}`;
  const size = Number(descr[3]);
  const offset = start + headerLength;
  if (offset + count * size > bytes.byteLength)
    throw bad(`needs ${count * size} data bytes, has ${bytes.byteLength - offset}`);
  const data = bytes.slice(offset, offset + count * size).buffer;
  const values = new Float64Array(count);
  const readers: Record<string, () => ArrayLike<number>> = {
    f4: () => new Float32Array(data),
    f8: () => new Float64Array(data),
    f2: () => Array.from(new Uint16Array(data), f16BitsToF32),
    i1: () => new Int8Array(data),
    u1: () => new Uint8Array(data),
    b1: () => new Uint8Array(data),
    i2: () => new Int16Array(data),
    u2: () => new Uint16Array(data),
    i4: () => new Int32Array(data),
    u4: () => new Uint32Array(data),
    i8: () => Array.from(new BigInt64Array(data), Number),
  };
  const read = readers[kind];
  if (!read) throw bad(`dtype ${descr[0]} is not supported`);
  values.set(read());
  return { shape, values };
}

/** Samples from a parsed .npy array for a single-input model. */
export function npySamples(array: NpyArray, inputs: readonly TensorSpec[], source = '.npy'): SampleSet {
  const spec = inputs[0];
  if (inputs.length !== 1 || !spec)
    throw new ConverterError(
      'DATA_INVALID',
      `.npy data feeds a model with one input; this one has ${inputs.length}`,
    );
  const [count = 0, ...rest] = array.shape;
  const shape = sampleShape(spec, (i) => rest[i - 1]);
  const per = shape.reduce((a, b) => a * b, 1);
  if (rest.reduce((a, b) => a * b, 1) !== per)
    throw new ConverterError(
      'DATA_INVALID',
      `${source} has samples of shape [${rest.join(',')}]; input "${spec.name}" takes [${shape.slice(1).join(',')}]`,
    );
  const samples: Sample[] = [];
  for (let s = 0; s < count; s++) {
    const slice = array.values.subarray(s * per, (s + 1) * per);
    if (spec.dtype === 'float32')
      samples.push({ [spec.name]: { dtype: 'float32', shape, data: Float32Array.from(slice) } });
    else if (spec.dtype === 'int64')
      samples.push({
        [spec.name]: { dtype: 'int64', shape, data: BigInt64Array.from(slice, (v) => BigInt(Math.round(v))) },
      });
    else
      throw new ConverterError('DATA_INVALID', `.npy cannot feed input "${spec.name}" of type ${spec.dtype}`);
  }
  if (samples.length === 0) throw new ConverterError('DATA_INVALID', `${source} holds no samples`);
  return { samples, origin: 'npy', description: `${count} samples from ${source}` };
}
