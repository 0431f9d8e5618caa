import { EdgefleetError } from '@edgefleet/protocol';

export type AgentErrorCode =
  | 'ENROLL_FAILED'
  | 'NOT_ENROLLED'
  | 'HUB_UNREACHABLE'
  | 'HUB_REFUSED'
  | 'DOWNLOAD_FAILED'
  | 'DISK_FULL'
  | 'ARTIFACT_HASH_MISMATCH'
  | 'ARTIFACT_NOT_IN_MANIFEST'
  | 'MANIFEST_MISMATCH'
  | 'NO_BACKEND'
  | 'MODEL_LOAD_FAILED'
  | 'SMOKE_TEST_FAILED'
  | 'MODEL_CRASH_LOOP'
  | 'ERROR_RATE_SPIKE'
  | 'INFERENCE_FAILED'
  | 'BAD_INPUT';

/** Errors of the agent; `transient` ones (network, hub 5xx) are retried, the rest fail the deployment. */
export class AgentError extends EdgefleetError {
  declare readonly code: AgentErrorCode;
  readonly transient: boolean;
  constructor(
    code: AgentErrorCode,
    message: string,
    options: { cause?: unknown; transient?: boolean; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'AgentError';
    this.transient = options.transient ?? false;
  }
}
