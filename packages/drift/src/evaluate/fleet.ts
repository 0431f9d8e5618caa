/**
 * Fleet view of one model version: each device's recent windows merged until they reach M_min,
 * the fleet as the sum of those, per-device decisions filtered by Benjamini–Hochberg across
 * devices (research §13.4: Bonferroni/Holm within a device, BH across devices).
 */
import type { ReferenceProfile } from '../profile-schema.ts';
import { bhAdjust } from '../stats/multiple-testing.ts';
import { cloneWindow, emptyWindow, mergeInto } from '../window/merge.ts';
import type { WindowStats } from '../window/window.ts';
import {
  type DriftStatus,
  type EvaluationOptions,
  evaluateScope,
  type ScopeEvaluation,
  type ScopeStatus,
  worst,
} from './scope.ts';

/** Merge windows newest first until the merged window holds at least `minCount` predictions. */
export function recentWindow(
  newestFirst: readonly WindowStats[],
  minCount: number,
): { window: WindowStats; used: number } | undefined {
  const [first, ...rest] = newestFirst;
  if (!first) return undefined;
  const out = cloneWindow(first);
  let used = 1;
  for (const w of rest) {
    if (out.n >= minCount) break;
    mergeInto(out, w);
    used++;
  }
  return { window: out, used };
}

export interface DeviceEvaluation {
  deviceId: string;
  /** The device's own status after BH across devices (a device that does not survive FDR is ok). */
  status: ScopeStatus;
  /** BH q-value of the device's smallest Holm-adjusted p. */
  qValue: number;
  windows: number;
  evaluation: ScopeEvaluation;
}

export interface FleetEvaluation {
  /** Version status: the fleet-merged decision, raised to warning when ≥ deviceShare of devices drift. */
  status: ScopeStatus;
  /** Variables behind the status (fleet-merged first, then those of drifting devices). */
  variables: string[];
  fleet: ScopeEvaluation;
  devices: DeviceEvaluation[];
  /** Devices at warning/drift after BH, as a share of devices with enough data. */
  driftingDeviceShare: number;
}

export interface FleetOptions extends EvaluationOptions {
  /** FDR across devices (default 0.05). */
  fdr?: number;
  /** Share of drifting devices that raises the version to warning (default 0.2). */
  deviceShare?: number;
}

/** Evaluate a model version over devices' windows (each device's list newest first). */
export function evaluateFleet(
  profile: ReferenceProfile,
  windowsByDevice: ReadonlyMap<string, readonly WindowStats[]>,
  options: FleetOptions = {},
): FleetEvaluation {
  const minWindow = options.minWindow ?? profile.minWindow;
  const fleetWindow = emptyWindow(profile);
  const perDevice: { deviceId: string; windows: number; evaluation: ScopeEvaluation }[] = [];
  for (const [deviceId, windows] of windowsByDevice) {
    const recent = recentWindow(windows, minWindow);
    if (!recent) continue;
    mergeInto(fleetWindow, recent.window);
    perDevice.push({
      deviceId,
      windows: recent.used,
      evaluation: evaluateScope(profile, recent.window, options),
    });
  }
  const fleet = evaluateScope(profile, fleetWindow, options);
  const pDevice = perDevice.map((d) =>
    d.evaluation.status === 'insufficient-data'
      ? 1
      : Math.min(1, ...d.evaluation.variables.map((v) => v.pAdjusted)),
  );
  const q = bhAdjust(pDevice);
  const fdr = options.fdr ?? 0.05;
  const devices: DeviceEvaluation[] = perDevice.map((d, i) => {
    const qValue = q[i]!;
    const own = d.evaluation.status;
    const status: ScopeStatus = own === 'insufficient-data' || qValue < fdr ? own : 'ok';
    return { deviceId: d.deviceId, status, qValue, windows: d.windows, evaluation: d.evaluation };
  });
  const judged = devices.filter((d) => d.status !== 'insufficient-data');
  const drifting = judged.filter((d) => d.status === 'warning' || d.status === 'drift');
  const share = judged.length ? drifting.length / judged.length : 0;
  let status = fleet.status;
  const variables = [...fleet.drifted];
  if (share >= (options.deviceShare ?? 0.2) && drifting.length > 0) {
    status = status === 'insufficient-data' ? 'warning' : worst<ScopeStatus>(status, 'warning');
    for (const d of drifting)
      for (const v of d.evaluation.drifted) if (!variables.includes(v)) variables.push(v);
  }
  return { status, variables, fleet, devices, driftingDeviceShare: share };
}

export type { DriftStatus };
