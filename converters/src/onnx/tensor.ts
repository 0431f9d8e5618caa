/**
 * TensorProto data in and out: raw_data or the typed repeated fields, fp16 bit conversion, and
 * constructors for the initializers the passes add. Raw bytes are always copied: a view on a pooled
 * Node Buffer would read (or later serialise) its neighbours.
 */
import { create } from '@bufbuild/protobuf';
import { type TensorProto, TensorProto_DataLocation, TensorProtoSchema } from 'onnx-buf';
import { ConverterError } from '../errors.ts';

/** ONNX TensorProto.DataType values used here. */
export const DT = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;

export const elementCount = (dims: readonly (number | bigint)[]): number =>
  dims.reduce<number>((a, d) => a * Number(d), 1);

function copyBytes(bytes: Uint8Array): ArrayBuffer {
  const out = new Uint8Array(bytes.byteLength);
  out.set(bytes);
  return out.buffer;
}

function checkInline(t: TensorProto): void {
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL)
    throw new ConverterError(
      'ONNX_INVALID',
      `tensor "${t.name}" keeps its data in an external file; load the model with its data first`,
    );
}

function checkCount(t: TensorProto, got: number): void {
  const want = elementCount(t.dims);
  if (got !== want)
    throw new ConverterError(
      'ONNX_INVALID',
      `tensor "${t.name}" holds ${got} values but its shape [${t.dims.join(',')}] needs ${want}`,
    );
}

/** The values of a float tensor (FLOAT, FLOAT16 or DOUBLE) as float32. */
export function readFloats(t: TensorProto): Float32Array {
  checkInline(t);
  let out: Float32Array;
  const raw = t.rawData.byteLength > 0;
  if (t.dataType === DT.FLOAT) {
    if (raw && t.rawData.byteLength % 4 !== 0)
      throw new ConverterError('ONNX_INVALID', `tensor "${t.name}" has a partial float`);
    out = raw ? new Float32Array(copyBytes(t.rawData)) : Float32Array.from(t.floatData);
  } else if (t.dataType === DT.FLOAT16) {
    if (raw && t.rawData.byteLength % 2 !== 0)
      throw new ConverterError('ONNX_INVALID', `tensor "${t.name}" has a partial float16`);
    const bits = raw ? new Uint16Array(copyBytes(t.rawData)) : Uint16Array.from(t.int32Data);
    out = Float32Array.from(bits, f16BitsToF32);
  } else if (t.dataType === DT.DOUBLE) {
    if (raw && t.rawData.byteLength % 8 !== 0)
      throw new ConverterError('ONNX_INVALID', `tensor "${t.name}" has a partial double`);
    out = Float32Array.from(raw ? new Float64Array(copyBytes(t.rawData)) : t.doubleData);
  } else {
    throw new ConverterError('ONNX_UNSUPPORTED', `tensor "${t.name}" is not a float tensor`);
  }
  checkCount(t, out.length);
  return out;
}

/** The values of an integer tensor as numbers (int64 beyond 2^53 loses precision; shapes never get there). */
export function readInts(t: TensorProto): number[] {
  checkInline(t);
  const raw = t.rawData.byteLength > 0 ? copyBytes(t.rawData) : undefined;
  let out: number[];
  switch (t.dataType) {
    case DT.INT64:
      out = raw
        ? Array.from(new BigInt64Array(raw.slice(0, raw.byteLength & ~7)), Number)
        : t.int64Data.map(Number);
      break;
    case DT.INT32:
      out = raw ? Array.from(new Int32Array(raw.slice(0, raw.byteLength & ~3))) : [...t.int32Data];
      break;
    case DT.INT8:
      out = raw ? Array.from(new Int8Array(raw)) : [...t.int32Data];
      break;
    case DT.UINT8:
    case DT.BOOL:
      out = raw ? Array.from(new Uint8Array(raw)) : [...t.int32Data];
      break;
    default:
      throw new ConverterError('ONNX_UNSUPPORTED', `tensor "${t.name}" is not an integer tensor`);
  }
  checkCount(t, out.length);
  return out;
}

type TypedData = Float32Array | Uint16Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

/** A new initializer with raw little-endian data. */
export function makeTensor(
  name: string,
  dims: readonly number[],
  dataType: number,
  data: TypedData,
): TensorProto {
  return create(TensorProtoSchema, {
    name,
    dims: dims.map((d) => BigInt(d)),
    dataType,
    rawData: new Uint8Array(copyBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))),
  });
}

export const floatTensor = (name: string, dims: readonly number[], data: Float32Array): TensorProto =>
  makeTensor(name, dims, DT.FLOAT, data);

export const int64Tensor = (name: string, values: readonly number[]): TensorProto =>
  makeTensor(
    name,
    [values.length],
    DT.INT64,
    BigInt64Array.from(values, (v) => BigInt(v)),
  );

// fp16 <-> fp32 through shared views: exact, round-half-to-even, like numpy's astype(float16).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → IEEE half bits, rounding to nearest even; overflow becomes ±Infinity. */
export function f32ToF16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** IEEE half bits → float32 value. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}
