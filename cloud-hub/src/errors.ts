import { EdgefleetError } from '@edgefleet/protocol';

/** HTTP status per error code; anything not listed is a 500. */
const statusByCode: Record<string, number> = {
  VALIDATION_FAILED: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED: 415,
  RANGE_NOT_SATISFIABLE: 416,
  RATE_LIMITED: 429,
};

/** An error the hub returns to a client; its code picks the HTTP status. */
export class HubError extends EdgefleetError {
  constructor(
    code: keyof typeof statusByCode | string,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'HubError';
  }
}

export function httpStatusFor(error: EdgefleetError): number {
  if (error.code in statusByCode) return statusByCode[error.code] ?? 500;
  // Errors about the user's input from other packages (bundles, models) are the client's to fix.
  if (error.code.startsWith('BUNDLE_') || error.code.startsWith('ONNX_') || error.code.startsWith('TFLITE_'))
    return 400;
  return 500;
}

export const notFound = (what: string) => new HubError('NOT_FOUND', `${what} not found`);
