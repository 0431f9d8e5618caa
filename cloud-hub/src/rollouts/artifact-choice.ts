/**
 * The artifact a device gets out of a model version. The rules live in @edgefleet/device-profiles
 * (`chooseArtifact`, docs/device-profiles.md); this adapter gives it the device's profile (its own,
 * else the one it reports, else the generic one for its platform and arch) and what the hub knows
 * about it: enrollment facts (accelerators, a browser's WebGPU features, memory) and the runtimes the
 * device last reported, with why any is unavailable.
 */
import type { BundleManifest } from '@edgefleet/bundle';
import { type ChoiceFacts, chooseArtifact, type Rejection, resolveProfile } from '@edgefleet/device-profiles';
import type { DeviceRecord } from '../store/devices.ts';

export interface ArtifactChoice {
  artifact: BundleManifest['artifacts'][number] | null;
  /** One sentence: the choice and why (or why nothing suits the device). */
  reason: string;
  /** Every artifact not chosen, with why. */
  rejected: Rejection[];
  /** The profile the choice was made for, when one resolved. */
  profile: string | null;
}

/** What the rules may use about a device, from its record. */
export function choiceFactsOf(device: DeviceRecord): ChoiceFacts {
  // Browsers enroll with their adapter's features (`shader-f16`) beside the common facts.
  const webgpu = (device.facts as { webgpu?: { available?: boolean; features?: unknown } }).webgpu;
  const features = Array.isArray(webgpu?.features)
    ? webgpu.features.filter((f): f is string => typeof f === 'string')
    : [];
  if (webgpu?.available) features.push('webgpu');
  return {
    accelerators: device.facts.accelerators ?? [],
    features,
    runtimes: device.reported?.runtimes ?? [],
    ...(device.facts.memTotalMb ? { memTotalMb: device.facts.memTotalMb } : {}),
  };
}

export function chooseArtifactFor(device: DeviceRecord, manifest: BundleManifest): ArtifactChoice {
  const id = device.profile ?? device.reported?.profile ?? null;
  const resolved = resolveProfile(id, device.facts);
  if (!resolved.profile) {
    return {
      artifact: null,
      reason: `${resolved.reason}: no device profile to choose an artifact of ${manifest.name}@${manifest.version} by`,
      rejected: [],
      profile: null,
    };
  }
  const choice = chooseArtifact(resolved.profile, manifest, choiceFactsOf(device));
  // Say so when the profile was a stand-in (unknown or missing id).
  const via = id === resolved.profile.id ? '' : ` [${resolved.reason}]`;
  return {
    artifact: choice.artifact,
    reason: `${choice.reason}${via}`,
    rejected: choice.rejected,
    profile: resolved.profile.id,
  };
}
