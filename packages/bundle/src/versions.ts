import semver from 'semver';
import { BundleError } from './errors.ts';

/** Semantic-version order: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  return semver.compare(a, b);
}

/**
 * Refuse a version lower than the installed one, unless this is a rollback to a version the
 * device itself ran before (a fleet rollback returns devices to their last good model).
 */
export function checkNotDowngrade(
  installed: string | undefined,
  candidate: string,
  options: { rollbackTo?: readonly string[] } = {},
): void {
  if (installed === undefined || compareVersions(candidate, installed) >= 0) return;
  if (options.rollbackTo?.includes(candidate)) return;
  throw new BundleError('BUNDLE_DOWNGRADE', `refusing ${candidate}: lower than the installed ${installed}`);
}
