import { EdgefleetError } from '@edgefleet/protocol';

export type FlashErrorCode =
  | 'FLASH_RUNTIME_MISSING'
  | 'FLASH_BOOT_INVALID'
  | 'FLASH_OPTIONS_INVALID'
  | 'FLASH_BUILD_FAILED';

/** `edgefleet flash` failures, each with a message that says what to do. */
export class FlashError extends EdgefleetError {
  declare readonly code: FlashErrorCode;
  constructor(code: FlashErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'FlashError';
  }
}
