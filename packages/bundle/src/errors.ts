import { EdgefleetError } from '@edgefleet/protocol';

export type BundleErrorCode =
  | 'BUNDLE_MALFORMED'
  | 'BUNDLE_TOO_LARGE'
  | 'BUNDLE_UNSAFE_PATH'
  | 'BUNDLE_UNSIGNED'
  | 'BUNDLE_SIGNATURE_INVALID'
  | 'BUNDLE_UNTRUSTED_KEY'
  | 'BUNDLE_HASH_MISMATCH'
  | 'BUNDLE_EXPIRED'
  | 'BUNDLE_DOWNGRADE';

/** Every failure of reading, verifying or accepting a bundle. */
export class BundleError extends EdgefleetError {
  declare readonly code: BundleErrorCode;
  constructor(
    code: BundleErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'BundleError';
  }
}
