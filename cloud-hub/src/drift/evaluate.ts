/**
 * Drift of one model version, evaluated from the statistics windows its devices sent: each
 * device's newest windows merged until they hold the profile's minimum count, the fleet as their
 * sum, and @edgefleet/drift's decisions (significance and effect size, Holm across variables, BH
 * across devices). Windows that do not decode against the profile (a browser's basic window, a
 * device on another profile) are counted and skipped, never fatal.
 */
import { buffer } from 'node:stream/consumers';
import {
  checkWindow,
  decodeWindow,
  evaluateFleet,
  type FleetEvaluation,
  type FleetOptions,
  parseReferenceProfile,
  type ReferenceProfile,
  type WindowStats,
} from '@edgefleet/drift';
import type { HubContext } from '../context.ts';
import { HubError, notFound } from '../errors.ts';

export interface DriftOptions extends FleetOptions {
  /** Only windows that ended within this long (default 24 h). */
  lookbackMs?: number;
  /** Only this device's windows. */
  deviceId?: string;
}

export interface DriftReport extends FleetEvaluation {
  model: string;
  version: string;
  evaluatedAt: string;
  /** Windows in the lookback, those the decision used (newest per device), and those not of this profile. */
  windows: { received: number; used: number; skipped: number; devices: number };
  lookbackMs: number;
}

const profiles = new Map<string, ReferenceProfile>();

/** The version's reference profile (cached by sha256: stored files never change). */
export async function loadProfile(
  ctx: HubContext,
  model: string,
  version: string,
): Promise<ReferenceProfile> {
  const record = await ctx.store.models.getVersion(model, version);
  if (!record) throw notFound(`${model}@${version}`);
  const file = record.files.find((f) => f.kind === 'reference-profile');
  if (!file)
    throw new HubError(
      'NOT_FOUND',
      `${model}@${version} has no reference profile: convert or publish it with --reference DATA`,
    );
  const cached = profiles.get(file.sha256);
  if (cached) return cached;
  const bytes = new Uint8Array(await buffer(await ctx.artifacts.read(file.sha256)));
  const profile = parseReferenceProfile(bytes);
  profiles.set(file.sha256, profile);
  return profile;
}

/** Stored windows of one version, newest first, as the store returns them. */
export interface StoredWindow {
  deviceId: string;
  window: unknown;
}

/**
 * Evaluate stored windows against a profile: per device only the newest windows its merged window
 * needs (windows that do not fit the profile are skipped and counted).
 */
export function evaluateWindows(
  profile: ReferenceProfile,
  newestFirst: Iterable<StoredWindow>,
  options: DriftOptions = {},
): FleetEvaluation & { windows: DriftReport['windows'] } {
  const minWindow = options.minWindow ?? profile.minWindow;
  const byDevice = new Map<string, { windows: WindowStats[]; n: number }>();
  let received = 0;
  let used = 0;
  let skipped = 0;
  for (const row of newestFirst) {
    if (options.deviceId && row.deviceId !== options.deviceId) continue;
    received++;
    const entry = byDevice.get(row.deviceId) ?? { windows: [], n: 0 };
    byDevice.set(row.deviceId, entry);
    if (entry.n >= minWindow) continue;
    let window: WindowStats;
    try {
      window = decodeWindow(row.window);
      checkWindow(profile, window);
    } catch {
      skipped++;
      continue;
    }
    entry.windows.push(window);
    entry.n += window.n;
    used++;
  }
  const windowsByDevice = new Map<string, WindowStats[]>();
  for (const [deviceId, entry] of byDevice)
    if (entry.windows.length) windowsByDevice.set(deviceId, entry.windows);
  return {
    ...evaluateFleet(profile, windowsByDevice, options),
    windows: { received, used, skipped, devices: windowsByDevice.size },
  };
}

/** Evaluate a version's drift now. Throws NOT_FOUND when it has no profile. */
export async function evaluateVersionDrift(
  ctx: HubContext,
  model: string,
  version: string,
  options: DriftOptions = {},
): Promise<DriftReport> {
  const profile = await loadProfile(ctx, model, version);
  const lookbackMs = options.lookbackMs ?? 24 * 3600_000;
  const since = new Date(Date.now() - lookbackMs).toISOString();
  const rows = await ctx.store.stats.recent(model, version, since);
  return {
    model,
    version,
    evaluatedAt: new Date().toISOString(),
    lookbackMs,
    ...evaluateWindows(profile, rows, options),
  };
}
