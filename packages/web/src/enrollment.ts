/**
 * A browser joins the fleet once per hub: it enrolls with its facts and profile, and keeps the
 * device id and secret in storage so later page loads are the same device. A hub that does not
 * (yet) offer browser enrollment, or refuses the token, leaves the SDK working without reporting.
 */
import type { BrowserEnrollResponse, BrowserFacts, TrustedKey } from '@edgefleet/protocol';
import { browserProfile, type Capabilities } from './capabilities.ts';
import { describeError } from './errors.ts';
import type { HubClient } from './hub-client.ts';
import { SDK_VERSION } from './version.ts';

/** The subset of `Storage` the SDK uses (localStorage in browsers; a Map-backed one in tests). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export interface DeviceCredentials {
  deviceId: string;
  name: string;
  secret: string;
  trustedKeys: TrustedKey[];
  profile: string | null;
  statsWindowMs?: number;
}

export type Enrollment =
  | { enrolled: true; credentials: DeviceCredentials; fresh: boolean }
  | { enrolled: false; reason: string };

const keyFor = (hub: string) => `edgefleet:device:${hub.replace(/\/+$/, '')}`;

/** The browser's facts in the shape the hub stores for every device. */
export function browserFacts(caps: Capabilities): BrowserFacts {
  return {
    arch: 'wasm32',
    platform: 'browser',
    model: caps.webgpu.adapter?.description || undefined,
    ...(caps.deviceMemoryGb !== undefined ? { memTotalMb: caps.deviceMemoryGb * 1024 } : {}),
    cpuCores: caps.hardwareConcurrency,
    accelerators: caps.webgpu.available
      ? ['webgpu', ...caps.webgpu.features.filter((f) => f === 'shader-f16')]
      : [],
    agentVersion: `edgefleet-web/${SDK_VERSION}`,
    userAgent: caps.userAgent.slice(0, 512),
    webgpu: {
      available: caps.webgpu.available,
      ...(caps.webgpu.reason ? { reason: caps.webgpu.reason.slice(0, 500) } : {}),
      features: caps.webgpu.features.slice(0, 64),
      ...(caps.webgpu.adapter ? { adapter: caps.webgpu.adapter } : {}),
    },
    crossOriginIsolated: caps.crossOriginIsolated,
  };
}

/** Stored credentials for this hub, or a fresh enrollment with `token`. Never throws. */
export async function ensureEnrolled(
  client: HubClient,
  hub: string,
  token: string,
  caps: Capabilities,
  storage: StorageLike | undefined,
  name?: string,
): Promise<Enrollment> {
  const stored = readCredentials(storage, hub);
  if (stored) return { enrolled: true, credentials: stored, fresh: false };
  let response: BrowserEnrollResponse;
  try {
    response = await client.enrollBrowser({
      token,
      ...(name ? { name } : {}),
      profile: browserProfile(caps),
      facts: browserFacts(caps),
    });
  } catch (error) {
    return { enrolled: false, reason: `browser enrollment failed: ${describeError(error).message}` };
  }
  const credentials: DeviceCredentials = {
    deviceId: response.deviceId,
    name: response.name,
    secret: response.secret,
    trustedKeys: response.trustedKeys,
    profile: response.profile,
    ...(response.statsWindowMs ? { statsWindowMs: response.statsWindowMs } : {}),
  };
  try {
    storage?.setItem(keyFor(hub), JSON.stringify(credentials));
  } catch {
    // Storage full or blocked: this page load reports anyway; the next one enrolls again.
  }
  return { enrolled: true, credentials, fresh: true };
}

/** Forget this hub's credentials (after the hub revoked them). */
export function forgetCredentials(storage: StorageLike | undefined, hub: string): void {
  try {
    storage?.removeItem(keyFor(hub));
  } catch {
    // nothing stored, or storage blocked
  }
}

function readCredentials(storage: StorageLike | undefined, hub: string): DeviceCredentials | undefined {
  try {
    const text = storage?.getItem(keyFor(hub));
    if (!text) return undefined;
    const value = JSON.parse(text) as DeviceCredentials;
    return typeof value.deviceId === 'string' && typeof value.secret === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
