import { EdgefleetError } from '@edgefleet/protocol';

export type ConverterErrorCode =
  | 'ONNX_INVALID'
  | 'ONNX_UNSUPPORTED'
  | 'ONNX_RUNTIME_FAILED'
  | 'TOLERANCE_NOT_MET'
  | 'TARGET_UNSUPPORTED'
  | 'DATA_INVALID'
  | 'KEY_INVALID';

/** Errors of reading, converting and verifying models. */
export class ConverterError extends EdgefleetError {
  declare readonly code: ConverterErrorCode;
  constructor(
    code: ConverterErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'ConverterError';
  }
}
