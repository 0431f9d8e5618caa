import { EdgefleetError } from '@edgefleet/protocol';

export type DriftErrorCode =
  /** Reference rows that cannot make a profile (none, wrong shape, no usable variable). */
  | 'DRIFT_REFERENCE_INVALID'
  /** A profile that does not match its schema or its own hash. */
  | 'DRIFT_PROFILE_INVALID'
  /** A window payload that does not decode, or does not fit the profile it names. */
  | 'DRIFT_WINDOW_INVALID'
  /** Windows built against different profiles (or bin layouts) that cannot be merged. */
  | 'DRIFT_PROFILE_MISMATCH'
  /** Arguments a statistic cannot work with (lengths differ, negative counts, …). */
  | 'DRIFT_ARGUMENT_INVALID';

/** Every failure in building profiles, reading windows or running drift statistics. */
export class DriftError extends EdgefleetError {
  declare readonly code: DriftErrorCode;
  constructor(
    code: DriftErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'DriftError';
  }
}
