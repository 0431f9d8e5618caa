/** KServe Open Inference Protocol v2 tensors <-> our plain tensors, with input checks that name the problem. */
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

export const kserveDatatype = (d: Dtype) => toKserve[d];

export interface KserveTensor {
  name: string;
  shape: number[];
  datatype: string;
  data: unknown[];
}

function flatten(data: unknown, out: unknown[] = []): unknown[] {
  if (Array.isArray(data)) for (const d of data) flatten(d, out);
  else out.push(data);
  return out;
}

function typedArray(dtype: Dtype, values: unknown[], name: string): PlainTensor['data'] {
  const numbers = (): number[] =>
    values.map((v, i) => {
      const n = typeof v === 'boolean' ? Number(v) : v;
      if (typeof n !== 'number' || Number.isNaN(n))
        throw new AgentError('BAD_INPUT', `input ${name}: element ${i} is not a number`);
      return n;
    });
  switch (dtype) {
    case 'float32':
      return Float32Array.from(numbers());
    case 'int8':
      return Int8Array.from(numbers());
    case 'uint8':
    case 'bool':
      return Uint8Array.from(numbers());
    case 'int16':
      return Int16Array.from(numbers());
    case 'int32':
      return Int32Array.from(numbers());
    case 'int64':
      return BigInt64Array.from(numbers().map((n) => BigInt(Math.trunc(n))));
    default:
      throw new AgentError('BAD_INPUT', `input ${name}: datatype ${toKserve[dtype]} is not supported here`);
  }
}

/** Check a request's inputs against the model's and turn them into tensors. */
export function decodeInputs(request: unknown, specs: readonly TensorSpec[]): Record<string, PlainTensor> {
  const inputs = (request as { inputs?: unknown })?.inputs;
  if (!Array.isArray(inputs) || inputs.length === 0)
    throw new AgentError('BAD_INPUT', 'request needs an "inputs" array');
  const out: Record<string, PlainTensor> = {};
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
    const values = flatten(t.data);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (values.length !== count)
      throw new AgentError(
        'BAD_INPUT',
        `input ${t.name}: ${values.length} values for shape [${t.shape}] (needs ${count})`,
      );
    out[t.name] = { dtype, shape: t.shape, data: typedArray(dtype, values, t.name) };
  }
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
