/**
 * Profile validation that reports every problem at once (all files, all keys), as users fixing a
 * profile file want to see the whole list rather than one error per attempt.
 */
import { ProfileError, type ProfileIssue } from './errors.ts';
import { type DeviceProfile, deviceProfile } from './schema.ts';

/** Check one profile; returns its issues (empty when valid) and the parsed profile when valid. */
export function checkProfile(
  input: unknown,
  source: string,
): { profile?: DeviceProfile; issues: ProfileIssue[] } {
  const result = deviceProfile.safeParse(input);
  if (result.success) return { profile: result.data, issues: [] };
  return {
    issues: result.error.issues.map((i) => ({
      source,
      path: i.path.map(String).join('.') || '(root)',
      message: i.code === 'unrecognized_keys' ? `unknown key(s): ${i.keys.join(', ')}` : i.message,
    })),
  };
}

/**
 * Validate a set of profiles (`source` → parsed JSON) together: schema problems in each, and ids
 * that are duplicated or differ from the file name. Throws PROFILE_INVALID listing every issue.
 */
export function validateProfiles(inputs: Record<string, unknown>): DeviceProfile[] {
  const issues: ProfileIssue[] = [];
  const profiles: DeviceProfile[] = [];
  const owner = new Map<string, string>();
  for (const [source, input] of Object.entries(inputs)) {
    const checked = checkProfile(input, source);
    issues.push(...checked.issues);
    const p = checked.profile;
    if (!p) continue;
    const base = source.replace(/^.*\//, '').replace(/\.json$/, '');
    if (source.endsWith('.json') && base !== p.id)
      issues.push({ source, path: 'id', message: `id "${p.id}" differs from the file name "${base}.json"` });
    const first = owner.get(p.id);
    if (first) issues.push({ source, path: 'id', message: `id "${p.id}" is already used by ${first}` });
    else owner.set(p.id, source);
    profiles.push(p);
  }
  if (issues.length > 0) {
    const lines = issues.map((i) => `${i.source}: ${i.path}: ${i.message}`);
    throw new ProfileError(
      'PROFILE_INVALID',
      `${issues.length} problem(s) in device profiles:\n  ${lines.join('\n  ')}`,
      issues,
    );
  }
  return profiles;
}

/** Parse profile JSON text (one profile or an array), listing every problem. */
export function parseProfilesJson(text: string, source: string): DeviceProfile[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new ProfileError('PROFILE_INVALID', `${source}: not JSON: ${(error as Error).message}`, [
      { source, path: '(root)', message: 'not JSON' },
    ]);
  }
  const list = Array.isArray(data) ? data : [data];
  return validateProfiles(
    Object.fromEntries(list.map((p, i) => [list.length > 1 ? `${source}[${i}]` : source, p])),
  );
}
