/**
 * Feature rows as samples: CSV (numbers, optional header) or JSON lines (an array of numbers, or an
 * object keyed by input name, or an object of named features for a single-input model). Each row is
 * one sample of batch 1; its length must match the input's per-sample size.
 */
import type { TensorSpec } from '@edgefleet/bundle';
import { ConverterError } from '../errors.ts';
import { type Sample, type SampleSet, sampleShape } from './samples.ts';

function toSample(spec: TensorSpec, values: number[], where: string): Sample {
  const fixed = spec.shape.slice(1).reduce<number>((a, d) => a * (typeof d === 'number' && d > 0 ? d : 1), 1);
  const dynamic = spec.shape.slice(1).filter((d) => !(typeof d === 'number' && d > 0)).length;
  const shape = sampleShape(spec, () =>
    dynamic === 1 && values.length % fixed === 0 ? values.length / fixed : undefined,
  );
  const size = shape.reduce((a, b) => a * b, 1);
  if (values.length !== size)
    throw new ConverterError(
      'DATA_INVALID',
      `${where}: ${values.length} values, input "${spec.name}" needs ${size} (shape [${shape.join(',')}])`,
    );
  if (values.some((v) => !Number.isFinite(v)))
    throw new ConverterError('DATA_INVALID', `${where}: a value is not a finite number`);
  switch (spec.dtype) {
    case 'float32':
      return { [spec.name]: { dtype: 'float32', shape, data: Float32Array.from(values) } };
    case 'int64':
      return {
        [spec.name]: {
          dtype: 'int64',
          shape,
          data: BigInt64Array.from(values, (v) => BigInt(Math.round(v))),
        },
      };
    case 'int32':
      return { [spec.name]: { dtype: 'int32', shape, data: Int32Array.from(values) } };
    default:
      throw new ConverterError('DATA_INVALID', `rows cannot feed input "${spec.name}" of type ${spec.dtype}`);
  }
}

function single(inputs: readonly TensorSpec[], kind: string): TensorSpec {
  if (inputs.length !== 1 || !inputs[0])
    throw new ConverterError(
      'DATA_INVALID',
      `${kind} rows feed a model with one input; this one has ${inputs.length} (use JSON lines keyed by input name)`,
    );
  return inputs[0];
}

/** Parse CSV text: comma-separated numbers, one sample per line; a non-numeric first line is a header. */
export function parseCsvRows(text: string, inputs: readonly TensorSpec[], source = 'CSV'): SampleSet {
  const spec = single(inputs, 'CSV');
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const samples: Sample[] = [];
  lines.forEach((line, i) => {
    const cells = line.split(',').map((c) => c.trim());
    const values = cells.map((c) => (c === '' ? Number.NaN : Number(c)));
    if (i === 0 && values.some(Number.isNaN)) return; // header
    samples.push(toSample(spec, values, `${source} line ${i + 1}`));
  });
  if (samples.length === 0) throw new ConverterError('DATA_INVALID', `${source} has no data rows`);
  return { samples, origin: 'csv', description: `${samples.length} rows from ${source}` };
}

const flat = (v: unknown): number[] => (Array.isArray(v) ? v.flatMap(flat) : [Number(v)]);

/** Parse JSON lines: each line an array, an object keyed by input name, or named features. */
export function parseJsonRows(text: string, inputs: readonly TensorSpec[], source = 'JSON lines'): SampleSet {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const samples = lines.map((line, i) => {
    const where = `${source} line ${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch (cause) {
      throw new ConverterError('DATA_INVALID', `${where} is not JSON`, { cause });
    }
    if (Array.isArray(row)) return toSample(single(inputs, 'array'), flat(row), where);
    if (!row || typeof row !== 'object')
      throw new ConverterError('DATA_INVALID', `${where}: expected an array or object`);
    const record = row as Record<string, unknown>;
    if (inputs.every((s) => s.name in record))
      return Object.assign(
        {},
        ...inputs.map((s) => toSample(s, flat(record[s.name]), `${where}, "${s.name}"`)),
      ) as Sample;
    return toSample(single(inputs, 'object'), Object.values(record).flatMap(flat), where);
  });
  if (samples.length === 0) throw new ConverterError('DATA_INVALID', `${source} has no rows`);
  return { samples, origin: 'jsonl', description: `${samples.length} rows from ${source}` };
}
