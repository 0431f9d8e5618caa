import { EdgefleetError } from '@edgefleet/protocol';

export type WebErrorCode =
  | 'WEB_OPTIONS_INVALID'
  | 'WEB_HUB_UNREACHABLE'
  | 'WEB_HUB_REFUSED'
  | 'WEB_MODEL_NOT_FOUND'
  | 'WEB_MANIFEST_INVALID'
  | 'WEB_ARTIFACT_FETCH_FAILED'
  | 'WEB_ARTIFACT_HASH_MISMATCH'
  | 'WEB_RUNTIME_UNAVAILABLE'
  | 'WEB_SESSION_FAILED'
  | 'WEB_RUN_FAILED'
  | 'WEB_SMOKE_TEST_FAILED'
  | 'WEB_NO_RUNNABLE_ARTIFACT'
  | 'WEB_INPUT_INVALID'
  | 'WEB_MODEL_DISPOSED';

/** Every failure of the browser SDK; signature problems surface as @edgefleet/bundle's BundleError. */
export class WebError extends EdgefleetError {
  declare readonly code: WebErrorCode;
  constructor(
    code: WebErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'WebError';
  }
}

/** A short, single-line description of any thrown value (for fallback records and reports). */
export function describeError(error: unknown): { code: string; message: string } {
  if (error instanceof EdgefleetError) return { code: error.code, message: error.message };
  if (error instanceof Error) return { code: error.name || 'Error', message: firstLine(error.message) };
  return { code: 'Error', message: firstLine(String(error)) };
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line.length > 500 ? `${line.slice(0, 497)}...` : line;
}
