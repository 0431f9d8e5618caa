/** Base class for errors that cross a boundary (API, MQTT, CLI): a stable `code` plus an optional cause. */
export class EdgefleetError extends Error {
  readonly code: string;
  /** Extra machine-readable detail, e.g. the field that failed validation. */
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EdgefleetError';
    this.code = code;
    this.details = options.details;
  }
}

/** A payload or request that does not match its schema; `field` names the first offending path. */
export class ValidationError extends EdgefleetError {
  readonly field: string;
  readonly issues: { path: string; message: string }[];

  constructor(issues: { path: string; message: string }[], context = 'payload') {
    const first = issues[0] ?? { path: '', message: 'invalid' };
    super('VALIDATION_FAILED', `invalid ${context}: ${first.path || '(root)'}: ${first.message}`, {
      details: { field: first.path, issues },
    });
    this.name = 'ValidationError';
    this.field = first.path;
    this.issues = issues;
  }
}
