/**
 * ONNX read/write with onnx-buf (protobuf-es): parsing and re-serialising keeps bytes identical and
 * unknown (newer) fields. Hostile bytes become a typed ConverterError, never a crash.
 */
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { type ModelProto, ModelProtoSchema } from 'onnx-buf';
import { ConverterError } from '../errors.ts';

export type { ModelProto };

/** Parse ONNX bytes; throws ONNX_INVALID for anything that is not a usable model. */
export function parseOnnx(bytes: Uint8Array): ModelProto {
  if (bytes.byteLength === 0)
    throw new ConverterError('ONNX_INVALID', 'not an ONNX model: the file is empty');
  let model: ModelProto;
  try {
    model = fromBinary(ModelProtoSchema, bytes, { readUnknownFields: true });
  } catch (cause) {
    throw new ConverterError('ONNX_INVALID', `not an ONNX model: ${(cause as Error).message}`, { cause });
  }
  const graph = model.graph;
  if (!graph) throw new ConverterError('ONNX_INVALID', 'not an ONNX model: it has no graph');
  if (model.irVersion === 0n)
    throw new ConverterError('ONNX_INVALID', 'not an ONNX model: ir_version is missing');
  if (graph.output.length === 0) throw new ConverterError('ONNX_INVALID', 'ONNX graph has no outputs');
  if (graph.node.length === 0) throw new ConverterError('ONNX_INVALID', 'ONNX graph has no nodes');
  return model;
}

export function serializeOnnx(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model, { writeUnknownFields: true });
}
