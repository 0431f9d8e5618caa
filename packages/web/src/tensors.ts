/**
 * Turning what callers pass to `predict` into typed tensors that match the model's inputs, and
 * checking them first: a wrong length or shape is a WEB_INPUT_INVALID naming the input, never an
 * engine crash deep inside WASM.
 */
import type { Dtype, TensorSpec } from '@edgefleet/bundle';
import { WebError } from './errors.ts';

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array;
export type TensorData = TypedArray | readonly number[];
export interface TensorInput {
  data: TensorData;
  /** Needed only when the model's shape has more than one dynamic dimension. */
  shape?: readonly number[];
}
/** A tensor for a single-input model, or a record of them by input name. */
export type ModelInput = TensorData | TensorInput | Record<string, TensorData | TensorInput>;

/** A tensor ready for an engine, in the dtype the model declares. */
export interface Tensor {
  dtype: Dtype;
  shape: number[];
  data: TypedArray;
}

const isData = (v: unknown): v is TensorData => Array.isArray(v) || ArrayBuffer.isView(v);
const isTensorInput = (v: unknown): v is TensorInput =>
  typeof v === 'object' && v !== null && !isData(v) && isData((v as TensorInput).data);

function invalid(name: string, message: string): WebError {
  return new WebError('WEB_INPUT_INVALID', `input "${name}": ${message}`, { details: { field: name } });
}

/** Match `input` to the model's input specs; every input must be present, no unknown names. */
export function normalizeInputs(input: ModelInput, specs: readonly TensorSpec[]): Record<string, Tensor> {
  const names = specs.map((s) => s.name);
  let byName: Record<string, TensorData | TensorInput>;
  // `{data, shape}` is one tensor unless it is a record naming every input (a single input called "data").
  if (isData(input) || (isTensorInput(input) && (specs.length === 1 || !names.every((n) => n in input)))) {
    if (specs.length !== 1)
      throw new WebError(
        'WEB_INPUT_INVALID',
        `this model has ${specs.length} inputs (${names.join(', ')}); pass a record by input name`,
      );
    byName = { [names[0] as string]: input as TensorData | TensorInput };
  } else if (typeof input === 'object' && input !== null) {
    byName = input as Record<string, TensorData | TensorInput>;
    const unknown = Object.keys(byName).filter((k) => !names.includes(k));
    if (unknown.length > 0)
      throw new WebError(
        'WEB_INPUT_INVALID',
        `unknown input(s) ${unknown.join(', ')}; the model takes ${names.join(', ')}`,
        {
          details: { field: unknown[0] },
        },
      );
  } else {
    throw new WebError(
      'WEB_INPUT_INVALID',
      'predict() takes a typed array, {data, shape} or a record of them',
    );
  }
  const out: Record<string, Tensor> = {};
  for (const spec of specs) {
    const value = byName[spec.name];
    if (value === undefined) throw invalid(spec.name, 'missing');
    const { data, shape } = isData(value)
      ? { data: value, shape: undefined }
      : isTensorInput(value)
        ? value
        : { data: undefined, shape: undefined };
    if (!data) throw invalid(spec.name, 'expected a typed array, a number array or {data, shape}');
    const dims = resolveShape(spec, data.length, shape);
    out[spec.name] = { dtype: spec.dtype, shape: dims, data: convertData(spec, data) };
  }
  return out;
}

/** The concrete shape of one input: given (and checked) or inferred from the element count. */
export function resolveShape(spec: TensorSpec, length: number, given?: readonly number[]): number[] {
  if (given) {
    if (given.length !== spec.shape.length)
      throw invalid(
        spec.name,
        `shape [${given}] has rank ${given.length}, the model wants rank ${spec.shape.length}`,
      );
    given.forEach((d, i) => {
      const want = spec.shape[i];
      if (!Number.isInteger(d) || d < 0)
        throw invalid(spec.name, `shape [${given}] has an invalid dimension`);
      if (typeof want === 'number' && want !== d)
        throw invalid(spec.name, `shape [${given}] does not fit the model's [${spec.shape}]`);
    });
    const count = given.reduce((a, b) => a * b, 1);
    if (count !== length) throw invalid(spec.name, `shape [${given}] needs ${count} values, got ${length}`);
    return [...given];
  }
  const fixed = spec.shape.reduce<number>((a, d) => (typeof d === 'number' ? a * d : a), 1);
  const dynamic = spec.shape.filter((d) => typeof d !== 'number').length;
  if (dynamic > 1)
    throw invalid(spec.name, `shape [${spec.shape}] has ${dynamic} dynamic dimensions; pass {data, shape}`);
  if (dynamic === 0) {
    if (fixed !== length)
      throw invalid(spec.name, `the model wants ${fixed} values ([${spec.shape}]), got ${length}`);
    return spec.shape as number[];
  }
  if (fixed === 0 || length % fixed !== 0 || length === 0)
    throw invalid(spec.name, `${length} values do not fill [${spec.shape}]`);
  return spec.shape.map((d) => (typeof d === 'number' ? d : length / fixed));
}

function convertData(spec: TensorSpec, data: TensorData): TypedArray {
  const q = spec.quantization;
  switch (spec.dtype) {
    case 'float32':
      return data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>, Number);
    case 'float16':
      return data instanceof Uint16Array
        ? data
        : Uint16Array.from(data as ArrayLike<number>, (v) => toHalf(Number(v)));
    case 'int64':
      return data instanceof BigInt64Array
        ? data
        : BigInt64Array.from(data as ArrayLike<number>, (v) => BigInt(Math.round(Number(v))));
    case 'int8':
    case 'uint8': {
      if (spec.dtype === 'int8' ? data instanceof Int8Array : data instanceof Uint8Array)
        return data as TypedArray;
      // Float input to a quantized tensor: real = scale·(q − zeroPoint), so q = real/scale + zeroPoint.
      const quantize = q && (data instanceof Float32Array || data instanceof Float64Array);
      const [lo, hi] = spec.dtype === 'int8' ? [-128, 127] : [0, 255];
      const values = Array.from(data as ArrayLike<number>, (v) => {
        const x = quantize ? Math.round(Number(v) / q.scale + q.zeroPoint) : Math.round(Number(v));
        return Math.min(hi as number, Math.max(lo as number, x));
      });
      return spec.dtype === 'int8' ? Int8Array.from(values) : Uint8Array.from(values);
    }
    case 'int16':
      return data instanceof Int16Array
        ? data
        : Int16Array.from(data as ArrayLike<number>, (v) => Math.round(Number(v)));
    case 'int32':
      return data instanceof Int32Array
        ? data
        : Int32Array.from(data as ArrayLike<number>, (v) => Math.round(Number(v)));
    case 'bool':
      return Uint8Array.from(data as ArrayLike<number>, (v) => (Number(v) ? 1 : 0));
    default:
      throw invalid(spec.name, `inputs of type ${spec.dtype} are not supported in the browser`);
  }
}

/** IEEE-754 half from a number (round to nearest even), as its 16 bits. */
export function toHalf(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0] as number;
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
    const half = mant >> shift;
    const rest = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >> 13);
  const rest = mant & 0x1fff;
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/** A number from IEEE-754 half bits. */
export function fromHalf(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Zero-filled inputs for a probe run when the bundle has no smoke test; dynamic dims become 1. */
export function syntheticInputs(specs: readonly TensorSpec[]): Record<string, Tensor> | undefined {
  const out: Record<string, Tensor> = {};
  for (const spec of specs) {
    if (spec.dtype === 'string') return undefined;
    const shape = spec.shape.map((d) => (typeof d === 'number' ? d : 1));
    const n = shape.reduce((a, b) => a * b, 1);
    out[spec.name] = { dtype: spec.dtype, shape, data: convertData(spec, new Float32Array(n)) };
  }
  return out;
}
