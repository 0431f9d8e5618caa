/**
 * KServe Open Inference Protocol v2 tensors <-> our plain tensors, with input checks that name the
 * problem. Tensor data comes as JSON (`data`, flat or nested row-major) or, with the binary tensor
 * data extension, as raw little-endian bytes after the JSON header (`parameters.binary_data_size`
 * per input, the header's length in the `Inference-Header-Content-Length` request header). Outputs go
 * back as JSON or, when asked (`parameters.binary_data_output`, or an output's
 * `parameters.binary_data`), as raw bytes after the JSON header in the same way.
 */
import { endianness } from 'node:os';
import type { Dtype, PlainTensor, TensorSpec } from '@edgefleet/bundle';
import { AgentError } from '../errors.ts';

const toKserve: Record<Dtype, string> = {
  float32: 'FP32',
  float16: 'FP16',
  int8: 'INT8',
  uint8: 'UINT8',
  int16: 'INT16',
  int32: 'INT32',
  int64: 'INT64',
  bool: 'BOOL',
  string: 'BYTES',
};
const fromKserve: Record<string, Dtype> = Object.fromEntries(
  Object.entries(toKserve).map(([k, v]) => [v, k as Dtype]),
);

interface TypedArrayOf {
  new (length: number): NumericArray | BigInt64Array | Uint16Array;
  new (buffer: ArrayBufferLike, offset: number, length: number): NumericArray | BigInt64Array | Uint16Array;
  readonly BYTES_PER_ELEMENT: number;
}

/**
 * The typed array each datatype lives in, here and in the binary extension (its element size is
 * the binary width). BYTES has no fixed size and is not served here.
 */
const arrayOf: Partial<Record<Dtype, TypedArrayOf>> = {
  float32: Float32Array,
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
};
const elementBytes = (dtype: Dtype) => arrayOf[dtype]?.BYTES_PER_ELEMENT;

export const kserveDatatype = (d: Dtype) => toKserve[d];

/** The request header that gives the JSON header's length when binary tensor data follows it. */
export const INFERENCE_HEADER = 'inference-header-content-length';

export interface KserveTensor {
  name: string;
  shape: number[];
  datatype: string;
  data?: unknown[];
  parameters?: Record<string, unknown>;
}

const LITTLE_ENDIAN = endianness() === 'LE';

function flatten(data: unknown, out: unknown[] = []): unknown[] {
  if (Array.isArray(data)) for (const d of data) flatten(d, out);
  else out.push(data);
  return out;
}

type NumericArray = Exclude<PlainTensor['data'], BigInt64Array | Uint16Array>;

function allocate(dtype: Dtype, count: number, name: string): NumericArray | BigInt64Array {
  const TypedArray = dtype === 'float16' ? undefined : arrayOf[dtype];
  if (!TypedArray)
    throw new AgentError(
      'BAD_INPUT',
      `input ${name}: datatype ${toKserve[dtype]} is not supported in JSON here${dtype === 'float16' ? ' (send it as binary data)' : ''}`,
    );
  return new TypedArray(count) as NumericArray | BigInt64Array;
}

/**
 * Fill a typed array from JSON values. Returns false when `values` holds a nested array (the caller
 * flattens and tries again); throws on a value that is not a number.
 */
function fill(out: NumericArray | BigInt64Array, values: unknown[], name: string): boolean {
  const big = out instanceof BigInt64Array;
  for (let i = 0; i < values.length; i++) {
    let v = values[i];
    if (typeof v !== 'number') {
      if (Array.isArray(v)) return false;
      if (typeof v === 'boolean') v = Number(v);
      else throw new AgentError('BAD_INPUT', `input ${name}: element ${i} is not a number`);
    }
    if (Number.isNaN(v)) throw new AgentError('BAD_INPUT', `input ${name}: element ${i} is not a number`);
    if (big) (out as BigInt64Array)[i] = BigInt(Math.trunc(v as number));
    else (out as NumericArray)[i] = v as number;
  }
  return true;
}

/** JSON `data` → a typed array, without intermediate arrays when `data` is already flat. */
function fromJson(
  dtype: Dtype,
  shape: number[],
  data: unknown,
  count: number,
  name: string,
): PlainTensor['data'] {
  if (data === undefined)
    throw new AgentError('BAD_INPUT', `input ${name}: needs "data" (or parameters.binary_data_size)`);
  if (Array.isArray(data) && data.length === count) {
    const out = allocate(dtype, count, name);
    if (fill(out, data, name)) return out;
  }
  const values = flatten(data);
  if (values.length !== count)
    throw new AgentError(
      'BAD_INPUT',
      `input ${name}: ${values.length} values for shape [${shape}] (needs ${count})`,
    );
  const out = allocate(dtype, count, name);
  fill(out, values, name);
  return out;
}

/** Raw little-endian bytes → a typed array: a view when aligned, else a copy. */
function fromBytes(dtype: Dtype, bytes: Uint8Array, count: number): PlainTensor['data'] {
  const TypedArray = arrayOf[dtype];
  if (!TypedArray) throw new Error(`no binary layout for ${dtype}`);
  const aligned = bytes.byteOffset % TypedArray.BYTES_PER_ELEMENT === 0;
  const buffer = aligned ? bytes.buffer : new Uint8Array(bytes).buffer;
  return new TypedArray(buffer, aligned ? bytes.byteOffset : 0, count) as PlainTensor['data'];
}

/** A non-negative integer parameter (`binary_data_size`), or undefined when absent. */
function sizeParameter(parameters: unknown, name: string): number | undefined {
  const value = (parameters as Record<string, unknown> | undefined)?.binary_data_size;
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
    throw new AgentError(
      'BAD_INPUT',
      `input ${name}: parameters.binary_data_size must be a non-negative integer, got ${JSON.stringify(value)}`,
    );
  return value;
}

/**
 * Split a request body into its JSON header and the binary tensor data after it. Without the
 * header length the whole body is JSON.
 */
export function splitBody(
  body: Buffer,
  headerLength: string | string[] | undefined,
): { request: unknown; binary: Buffer | undefined } {
  let json: Buffer = body;
  let binary: Buffer | undefined;
  if (headerLength !== undefined) {
    const text = Array.isArray(headerLength) ? headerLength[0] : headerLength;
    const n = Number(text);
    if (text === undefined || text.trim() === '' || !Number.isSafeInteger(n) || n < 0)
      throw new AgentError(
        'BAD_INPUT',
        `Inference-Header-Content-Length must be a non-negative integer, got "${String(text)}"`,
      );
    if (n > body.length)
      throw new AgentError(
        'BAD_INPUT',
        `Inference-Header-Content-Length ${n} is beyond the end of the body (${body.length} bytes)`,
      );
    json = body.subarray(0, n);
    binary = body.subarray(n);
  }
  let request: unknown;
  try {
    request = JSON.parse(json.toString('utf8'));
  } catch {
    throw new AgentError(
      'BAD_INPUT',
      binary
        ? `the request's JSON header (the first ${json.length} bytes, per Inference-Header-Content-Length) is not valid JSON`
        : 'request body is not valid JSON',
    );
  }
  return { request, binary };
}

/**
 * Check a request's inputs against the model's and turn them into tensors. `binary` is the body
 * after the JSON header (binary tensor data extension), consumed by the inputs that give
 * `parameters.binary_data_size`, in the order they appear.
 */
export function decodeInputs(
  request: unknown,
  specs: readonly TensorSpec[],
  binary?: Uint8Array,
): Record<string, PlainTensor> {
  const inputs = (request as { inputs?: unknown })?.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0)
    throw new AgentError('BAD_INPUT', 'request needs an "inputs" array');
  const out: Record<string, PlainTensor> = {};
  let offset = 0;
  for (const [i, raw] of inputs.entries()) {
    const t = raw as Partial<KserveTensor>;
    if (typeof t?.name !== 'string') throw new AgentError('BAD_INPUT', `inputs[${i}] needs a name`);
    const spec = specs.find((s) => s.name === t.name);
    if (!spec)
      throw new AgentError(
        'BAD_INPUT',
        `unknown input "${t.name}"; the model takes ${specs.map((s) => s.name).join(', ')}`,
      );
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new AgentError('BAD_INPUT', `input ${t.name}: shape must be an array of non-negative integers`);
    const dtype = fromKserve[String(t.datatype)];
    if (!dtype)
      throw new AgentError('BAD_INPUT', `input ${t.name}: unknown datatype "${String(t.datatype)}"`);
    if (dtype !== spec.dtype)
      throw new AgentError(
        'BAD_INPUT',
        `input ${t.name}: datatype ${t.datatype} but the model takes ${toKserve[spec.dtype]}`,
      );
    if (spec.shape.length > 0 && spec.shape.length !== t.shape.length) {
      throw new AgentError(
        'BAD_INPUT',
        `input ${t.name}: shape [${t.shape}] has ${t.shape.length} dimensions, the model takes ${spec.shape.length} ([${spec.shape}])`,
      );
    }
    spec.shape.forEach((dim, d) => {
      if (typeof dim === 'number' && dim > 0 && t.shape?.[d] !== dim) {
        throw new AgentError(
          'BAD_INPUT',
          `input ${t.name}: dimension ${d} is ${t.shape?.[d]}, the model needs ${dim}`,
        );
      }
    });
    const count = t.shape.reduce((a, b) => a * b, 1);
    const size = sizeParameter(t.parameters, t.name);
    let data: PlainTensor['data'];
    if (size === undefined) {
      data = fromJson(dtype, t.shape, t.data, count, t.name);
    } else {
      if (t.data !== undefined)
        throw new AgentError(
          'BAD_INPUT',
          `input ${t.name}: has both "data" and parameters.binary_data_size; send one of them`,
        );
      const width = elementBytes(dtype);
      if (!width)
        throw new AgentError(
          'BAD_INPUT',
          `input ${t.name}: datatype ${t.datatype} is not supported as binary data here`,
        );
      if (!LITTLE_ENDIAN)
        throw new AgentError('BAD_INPUT', 'binary tensor data is not supported on a big-endian device');
      const available = (binary?.length ?? 0) - offset;
      if (size > available)
        throw new AgentError(
          'BAD_INPUT',
          binary
            ? `input ${t.name}: binary_data_size ${size} goes beyond the end of the body (${available} bytes of binary data left after the JSON header and earlier inputs)`
            : `input ${t.name}: binary_data_size ${size} but the request has no binary data (send the JSON header's length in Inference-Header-Content-Length)`,
        );
      if (size !== count * width)
        throw new AgentError(
          'BAD_INPUT',
          `input ${t.name}: binary_data_size ${size} does not match shape [${t.shape}] of ${t.datatype} (needs ${count} × ${width} = ${count * width} bytes)`,
        );
      data = fromBytes(dtype, (binary as Uint8Array).subarray(offset, offset + size), count);
      offset += size;
    }
    out[t.name] = { dtype, shape: t.shape, data };
  }
  const extra = (binary?.length ?? 0) - offset;
  if (extra > 0)
    throw new AgentError(
      'BAD_INPUT',
      `${extra} bytes of binary data after the JSON header that no input's binary_data_size accounts for`,
    );
  for (const spec of specs)
    if (!out[spec.name]) throw new AgentError('BAD_INPUT', `missing input "${spec.name}"`);
  return out;
}

export function encodeOutputs(outputs: Record<string, PlainTensor>, wanted?: string[]): KserveTensor[] {
  return Object.entries(outputs)
    .filter(([name]) => !wanted || wanted.includes(name))
    .map(([name, t]) => ({
      name,
      shape: t.shape,
      datatype: toKserve[t.dtype],
      data:
        t.data instanceof BigInt64Array
          ? Array.from(t.data, Number)
          : Array.from(t.data as ArrayLike<number>),
    }));
}

/** Which outputs to return, and which of them as binary data. */
export interface OutputRequest {
  /** Names asked for, or undefined for all. */
  names?: string[];
  /** Default for outputs not named (`parameters.binary_data_output`). */
  binaryDefault: boolean;
  binary: Map<string, boolean>;
}

/** Read the request's output selection (refused before inference when malformed). */
export function outputRequest(request: unknown): OutputRequest {
  const r = request as {
    outputs?: unknown;
    parameters?: { binary_data_output?: unknown };
  };
  const binaryDefault = r.parameters?.binary_data_output === true;
  const binary = new Map<string, boolean>();
  if (r.outputs === undefined) return { binaryDefault, binary };
  if (!Array.isArray(r.outputs)) throw new AgentError('BAD_INPUT', '"outputs" must be an array');
  const names: string[] = [];
  for (const [i, o] of (r.outputs as unknown[]).entries()) {
    const out = o as { name?: unknown; parameters?: { binary_data?: unknown } };
    if (typeof out?.name !== 'string') throw new AgentError('BAD_INPUT', `outputs[${i}] needs a name`);
    names.push(out.name);
    const flag = out.parameters?.binary_data;
    if (flag !== undefined) {
      if (typeof flag !== 'boolean')
        throw new AgentError('BAD_INPUT', `output ${out.name}: parameters.binary_data must be true or false`);
      binary.set(out.name, flag);
    }
  }
  return { names, binaryDefault, binary };
}

/** A typed array as JSON array text, without an intermediate JS array where that is safe. */
function jsonArray(data: PlainTensor['data'], dtype: Dtype): string {
  if (data instanceof BigInt64Array) return `[${data.join(',')}]`;
  if (dtype === 'float32') {
    // NaN/±Inf have no JSON form: JSON.stringify writes null for them.
    for (let i = 0; i < data.length; i++)
      if (!Number.isFinite(data[i] as number)) return JSON.stringify(Array.from(data as Float32Array));
  }
  return `[${(data as Float32Array).join(',')}]`;
}

/**
 * The response body: JSON, or a JSON header followed by the binary outputs (with the header's
 * length to send as `Inference-Header-Content-Length`).
 */
export function encodeResponse(
  head: { model_name: string; model_version: string; id?: unknown },
  outputs: Record<string, PlainTensor>,
  selection: OutputRequest,
): { body: Buffer; headerLength?: number } {
  const parts: string[] = [];
  const blobs: Buffer[] = [];
  for (const name of Object.keys(outputs)) {
    if (selection.names && !selection.names.includes(name)) continue;
    const t = outputs[name] as PlainTensor;
    const prefix = `{"name":${JSON.stringify(name)},"datatype":"${toKserve[t.dtype]}","shape":[${t.shape.join(',')}]`;
    const binary = selection.binary.get(name) ?? selection.binaryDefault;
    if (binary && elementBytes(t.dtype) !== undefined) {
      const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      blobs.push(bytes);
      parts.push(`${prefix},"parameters":{"binary_data_size":${bytes.length}}}`);
    } else {
      parts.push(`${prefix},"data":${jsonArray(t.data, t.dtype)}}`);
    }
  }
  const id = head.id === undefined ? '' : `,"id":${JSON.stringify(head.id)}`;
  const json = `{"model_name":${JSON.stringify(head.model_name)},"model_version":${JSON.stringify(head.model_version)}${id},"outputs":[${parts.join(',')}]}`;
  if (blobs.length === 0) return { body: Buffer.from(json, 'utf8') };
  const header = Buffer.from(json, 'utf8');
  return { body: Buffer.concat([header, ...blobs]), headerLength: header.length };
}
