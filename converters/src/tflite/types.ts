/** TFLite tensor types: element sizes, names and the bundle's dtype for each. */
import type { Dtype } from '@edgefleet/bundle';
import { BuiltinOperator, TensorType } from './generated/schema_generated.ts';

/** Bytes per element; undefined for types without a fixed size (string, resource, variant, sub-byte). */
export const ELEMENT_BYTES: Partial<Record<TensorType, number>> = {
  [TensorType.FLOAT32]: 4,
  [TensorType.FLOAT16]: 2,
  [TensorType.BFLOAT16]: 2,
  [TensorType.INT32]: 4,
  [TensorType.UINT32]: 4,
  [TensorType.UINT8]: 1,
  [TensorType.INT8]: 1,
  [TensorType.INT64]: 8,
  [TensorType.UINT64]: 8,
  [TensorType.BOOL]: 1,
  [TensorType.INT16]: 2,
  [TensorType.UINT16]: 2,
  [TensorType.COMPLEX64]: 8,
  [TensorType.COMPLEX128]: 16,
  [TensorType.FLOAT64]: 8,
  [TensorType.FLOAT8_E4M3FN]: 1,
  [TensorType.FLOAT8_E5M2]: 1,
};

/** "INT8", "FLOAT32", … (the schema's names). */
export const typeName = (t: TensorType): string => TensorType[t] ?? `type ${t}`;

/** "CONV_2D", "FULLY_CONNECTED", … */
export const opName = (code: BuiltinOperator): string => BuiltinOperator[code] ?? `op ${code}`;

const DTYPES: Partial<Record<TensorType, Dtype>> = {
  [TensorType.FLOAT32]: 'float32',
  [TensorType.FLOAT16]: 'float16',
  [TensorType.INT8]: 'int8',
  [TensorType.UINT8]: 'uint8',
  [TensorType.INT16]: 'int16',
  [TensorType.INT32]: 'int32',
  [TensorType.INT64]: 'int64',
  [TensorType.BOOL]: 'bool',
  [TensorType.STRING]: 'string',
};

/** The bundle dtype of a TFLite tensor type, or undefined when the bundle has none for it. */
export const dtypeOf = (t: TensorType): Dtype | undefined => DTYPES[t];
