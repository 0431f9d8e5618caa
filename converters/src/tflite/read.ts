/**
 * TFLite files in and out through the flatc-generated object API. Reading goes through a
 * bounds-checked buffer and then a consistency check, so truncated, corrupt or hostile bytes give a
 * TfliteError (TFLITE_INVALID) naming what is wrong, never a crash, a hang or a garbage model.
 */
import { Builder } from 'flatbuffers';
import { TfliteError } from './errors.ts';
import { Model, type ModelT } from './generated/schema_generated.ts';
import { GuardedByteBuffer, OutOfBoundsError } from './guarded-buffer.ts';
import { validateModel } from './validate.ts';

export const TFLITE_IDENTIFIER = 'TFL3';

/** Does this look like a TFLite flatbuffer (the "TFL3" file identifier at bytes 4–8)? */
export function isTflite(bytes: Uint8Array): boolean {
  return (
    bytes.byteLength >= 8 &&
    String.fromCharCode(bytes[4] as number, bytes[5] as number, bytes[6] as number, bytes[7] as number) ===
      TFLITE_IDENTIFIER
  );
}

/** Parse and check a .tflite file; TFLITE_INVALID for anything that is not a consistent model. */
export function readTflite(bytes: Uint8Array): ModelT {
  if (bytes.byteLength < 16)
    throw new TfliteError('TFLITE_INVALID', `not a TFLite model: only ${bytes.byteLength} bytes`);
  if (!isTflite(bytes))
    throw new TfliteError('TFLITE_INVALID', 'not a TFLite model: the "TFL3" file identifier is missing');
  // A view into a larger (pooled) buffer would let typed-array views read past the file's end.
  const own = bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength ? bytes : bytes.slice();
  let model: ModelT;
  try {
    const bb = new GuardedByteBuffer(own);
    model = Model.getRootAsModel(bb).unpack();
  } catch (cause) {
    const why =
      cause instanceof OutOfBoundsError ? cause.message : `unreadable (${(cause as Error).message})`;
    throw new TfliteError('TFLITE_INVALID', `not a valid TFLite model: ${why}`, { cause });
  }
  // An absent and an empty data vector mean the same: keep one representation.
  for (const b of model.buffers) if (!(b.data instanceof Uint8Array)) b.data = Uint8Array.from(b.data);
  validateModel(model);
  return model;
}

/** Serialise a model (TFL3 identifier; 16-byte aligned constant buffers). */
export function writeTflite(model: ModelT): Uint8Array {
  const builder = new Builder(1024);
  Model.finishModelBuffer(builder, model.pack(builder));
  return builder.asUint8Array().slice();
}
