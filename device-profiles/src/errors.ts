import { EdgefleetError } from '@edgefleet/protocol';

export type ProfileErrorCode = 'PROFILE_INVALID' | 'PROFILE_UNKNOWN';

/** A profile file that does not match the schema (`issues` lists every problem), or an unknown id. */
export class ProfileError extends EdgefleetError {
  declare readonly code: ProfileErrorCode;
  readonly issues: ProfileIssue[];
  constructor(code: ProfileErrorCode, message: string, issues: ProfileIssue[] = []) {
    super(code, message, { details: { issues } });
    this.name = 'ProfileError';
    this.issues = issues;
  }
}

/** One problem in one profile: `source` is the file or id, `path` the key inside it. */
export interface ProfileIssue {
  source: string;
  path: string;
  message: string;
}
