/**
 * The profiles shipped with edgefleet, one JSON file per kind of device under `profiles/`.
 * Validated once at import: a broken file fails loudly with every problem listed.
 */
import browserWasm from '../profiles/browser-wasm.json' with { type: 'json' };
import browserWebgpu from '../profiles/browser-webgpu.json' with { type: 'json' };
import coralDevBoard from '../profiles/coral-dev-board.json' with { type: 'json' };
import coralDevBoardMini from '../profiles/coral-dev-board-mini.json' with { type: 'json' };
import jetsonNano from '../profiles/jetson-nano.json' with { type: 'json' };
import linuxArm64 from '../profiles/linux-arm64.json' with { type: 'json' };
import linuxX64 from '../profiles/linux-x64.json' with { type: 'json' };
import rpiCoralUsb from '../profiles/rpi-coral-usb.json' with { type: 'json' };
import rpi3 from '../profiles/rpi3.json' with { type: 'json' };
import rpi4 from '../profiles/rpi4.json' with { type: 'json' };
import rpi5 from '../profiles/rpi5.json' with { type: 'json' };
import { ProfileError } from './errors.ts';
import type { DeviceProfile } from './schema.ts';
import { validateProfiles } from './validate.ts';

/** The raw JSON of each built-in profile, by file name (tests validate these). */
export const builtinProfileFiles: Record<string, unknown> = {
  'rpi3.json': rpi3,
  'rpi4.json': rpi4,
  'rpi5.json': rpi5,
  'rpi-coral-usb.json': rpiCoralUsb,
  'coral-dev-board.json': coralDevBoard,
  'coral-dev-board-mini.json': coralDevBoardMini,
  'jetson-nano.json': jetsonNano,
  'linux-x64.json': linuxX64,
  'linux-arm64.json': linuxArm64,
  'browser-webgpu.json': browserWebgpu,
  'browser-wasm.json': browserWasm,
};

/** Every built-in profile, validated. */
export const builtinProfiles: readonly DeviceProfile[] = Object.freeze(validateProfiles(builtinProfileFiles));

/** The profile with this id among `profiles` (the built-ins by default); throws PROFILE_UNKNOWN. */
export function getProfile(id: string, profiles: readonly DeviceProfile[] = builtinProfiles): DeviceProfile {
  const found = profiles.find((p) => p.id === id);
  if (!found)
    throw new ProfileError(
      'PROFILE_UNKNOWN',
      `unknown device profile "${id}" (known: ${profiles.map((p) => p.id).join(', ')})`,
    );
  return found;
}

/** The generic profile for a platform and arch (`linux-x64`, `linux-arm64`, `browser-wasm`), if any. */
export function genericProfile(
  platform: string,
  arch: string,
  profiles: readonly DeviceProfile[] = builtinProfiles,
): DeviceProfile | undefined {
  const id = platform === 'browser' ? 'browser-wasm' : `${platform}-${arch}`;
  return profiles.find((p) => p.id === id);
}

/**
 * The profile to use for a device record: its own when known, otherwise the generic one for its
 * platform and arch, with the reason. `profile` is undefined when nothing fits (a 32-bit ARM OS).
 */
export function resolveProfile(
  id: string | null | undefined,
  facts: { platform?: string; arch?: string } = {},
  profiles: readonly DeviceProfile[] = builtinProfiles,
): { profile?: DeviceProfile; reason: string } {
  const own = id ? profiles.find((p) => p.id === id) : undefined;
  if (own) return { profile: own, reason: `profile ${own.id}` };
  const generic = genericProfile(facts.platform ?? 'linux', facts.arch ?? 'unknown', profiles);
  const why = id ? `unknown profile "${id}"` : 'no profile';
  if (generic)
    return { profile: generic, reason: `${why}; using ${generic.id} from the device's platform and arch` };
  return { reason: `${why}, and no generic profile for ${facts.platform ?? '?'}/${facts.arch ?? '?'}` };
}
