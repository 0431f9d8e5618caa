import { EdgefleetError } from '@edgefleet/protocol';

export type TfliteErrorCode =
  /** Not a TFLite flatbuffer, truncated, or internally inconsistent. */
  | 'TFLITE_INVALID'
  /** A valid model this code cannot handle (an ONNX op with no TFLite lowering, a float model for int8…). */
  | 'TFLITE_UNSUPPORTED'
  /** The TFLite interpreter refused the model or failed while running it. */
  | 'TFLITE_RUNTIME_FAILED'
  /** The TFLite interpreter (tfjs-tflite-node) is not installed or does not load here. */
  | 'TFLITE_RUNTIME_MISSING'
  /** An `_edgetpu.tflite` whose Edge TPU package cannot be read. */
  | 'EDGETPU_INVALID'
  /** edgetpu_compiler ran and failed. */
  | 'EDGETPU_COMPILER_FAILED';

/** Errors of reading, writing, converting and running TFLite / Edge TPU models. */
export class TfliteError extends EdgefleetError {
  declare readonly code: TfliteErrorCode;
  constructor(
    code: TfliteErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'TfliteError';
  }
}
