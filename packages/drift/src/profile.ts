/** Hashing, parsing and verifying reference profiles. */
import { ValidationError } from '@edgefleet/protocol';
import { DriftError } from './errors.ts';
import { canonicalJson, fnv1a64 } from './hash.ts';
import { type ReferenceProfile, referenceProfile } from './profile-schema.ts';

/** The hash a profile must carry: FNV-1a 64 of the canonical JSON of everything but `hash`. */
export function profileHash(profile: Omit<ReferenceProfile, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = profile;
  return fnv1a64(canonicalJson(rest));
}

/** Parse a profile from JSON text, bytes or a value; throws DriftError DRIFT_PROFILE_INVALID. */
export function parseReferenceProfile(input: string | Uint8Array | unknown): ReferenceProfile {
  let value: unknown = input;
  try {
    if (input instanceof Uint8Array) value = JSON.parse(new TextDecoder().decode(input));
    else if (typeof input === 'string') value = JSON.parse(input);
  } catch (error) {
    throw new DriftError('DRIFT_PROFILE_INVALID', 'reference profile is not JSON', { cause: error });
  }
  const parsed = referenceProfile.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
    const v = new ValidationError(issues, 'reference profile');
    throw new DriftError('DRIFT_PROFILE_INVALID', v.message, { cause: v, details: { issues } });
  }
  const expected = profileHash(parsed.data);
  if (parsed.data.hash !== expected)
    throw new DriftError(
      'DRIFT_PROFILE_INVALID',
      `reference profile hash ${parsed.data.hash} does not match its content`,
    );
  return parsed.data;
}
