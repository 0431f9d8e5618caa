/**
 * Assigning a rollout's devices: choose each device's artifact, remember what it ran before (for
 * rollback), write its desired state; respecting the plan's rate and per-site disruption budget.
 */
import { type BundleManifest, parseManifestBytes } from '@edgefleet/bundle';
import type { DesiredModel } from '@edgefleet/protocol';
import type { HubContext } from '../context.ts';
import type { DeviceRecord } from '../store/devices.ts';
import { type RolloutDeviceRecord, type RolloutRecord, terminalDeviceStates } from '../store/rollouts.ts';
import { chooseArtifactFor } from './artifact-choice.ts';
import { publishDesired, setDesiredModel } from './desired.ts';
import { siteOf } from './plan.ts';

export interface SignedVersion {
  manifest: BundleManifest;
  /** What devices receive in their desired state: manifest.json as base64, and its signature. */
  manifestBase64: string;
  signature: unknown;
}

// Per hub (tests run several in one process); versions are immutable, so entries never go stale.
const caches = new WeakMap<HubContext, Map<string, SignedVersion>>();

/** A model version's parsed and signed manifest. */
export async function signedVersionOf(
  ctx: HubContext,
  model: string,
  version: string,
): Promise<SignedVersion | undefined> {
  let cache = caches.get(ctx);
  if (!cache) {
    cache = new Map();
    caches.set(ctx, cache);
  }
  const key = `${model}@${version}`;
  const cached = cache.get(key);
  if (cached) return cached;
  const v = await ctx.store.models.getVersion(model, version);
  if (!v) return undefined;
  const entry: SignedVersion = {
    manifest: parseManifestBytes(new TextEncoder().encode(v.manifestText)),
    manifestBase64: Buffer.from(v.manifestText, 'utf8').toString('base64'),
    signature: JSON.parse(v.signatureText),
  };
  cache.set(key, entry);
  return entry;
}

export async function manifestOf(
  ctx: HubContext,
  model: string,
  version: string,
): Promise<BundleManifest | undefined> {
  return (await signedVersionOf(ctx, model, version))?.manifest;
}

/** The desired entry that installs `artifact` of a version (with its signed manifest). */
export function desiredEntry(
  version: SignedVersion,
  deploymentId: string,
  a: BundleManifest['artifacts'][number],
): DesiredModel {
  return {
    name: version.manifest.name,
    version: version.manifest.version,
    deploymentId,
    artifact: {
      sha256: a.sha256,
      size_bytes: a.size_bytes,
      target: a.target,
      runtime: a.runtime,
      precision: a.precision,
      file: a.file,
    },
    manifest: version.manifestBase64,
    signature: version.signature,
  };
}

/** What the device runs in `slot` now, as a desired entry a rollback can restore. */
export async function currentlyRunning(
  ctx: HubContext,
  device: DeviceRecord,
  slot: string,
): Promise<DesiredModel | null> {
  const active = device.reported?.models[slot]?.active;
  if (!active) return null;
  const desired = device.desired?.models[slot];
  if (desired && desired.version === active.version && desired.artifact.sha256 === active.sha256)
    return { ...desired, rollback: undefined };
  const signed = await signedVersionOf(ctx, active.name, active.version);
  const a = signed?.manifest.artifacts.find((x) => x.sha256 === active.sha256);
  if (!signed || !a) return null;
  return desiredEntry(signed, desired?.deploymentId ?? 'unknown', a);
}

async function assignDevice(
  ctx: HubContext,
  rollout: RolloutRecord,
  manifest: BundleManifest,
  device: DeviceRecord,
): Promise<void> {
  const choice = chooseArtifactFor(device, manifest);
  if (!choice.artifact) {
    await ctx.store.rollouts.updateDevice(rollout.id, device.id, { state: 'skipped', reason: choice.reason });
    await ctx.store.events.add({
      kind: 'rollout.device-skipped',
      subject: device.id,
      actor: null,
      message: `${rollout.model}@${rollout.version}: ${choice.reason}`,
      data: { rolloutId: rollout.id },
    });
    return;
  }
  const a = choice.artifact;
  const previous = await currentlyRunning(ctx, device, rollout.model);
  const alreadyActive = previous?.version === rollout.version && previous.artifact.sha256 === a.sha256;
  await ctx.store.rollouts.updateDevice(rollout.id, device.id, {
    state: alreadyActive ? 'active' : 'assigned',
    artifactSha256: a.sha256,
    reason: choice.reason,
    assigned: true,
    previous: alreadyActive ? null : previous,
  });
  const signed = await signedVersionOf(ctx, rollout.model, rollout.version);
  if (signed) await setDesiredModel(ctx, device.id, rollout.model, desiredEntry(signed, rollout.id, a));
}

/** Assign the current batch's pending devices that the rate limit and site budget allow now. */
export async function assignPending(
  ctx: HubContext,
  rollout: RolloutRecord,
  members: readonly RolloutDeviceRecord[],
  now = Date.now(),
): Promise<number> {
  const pending = members.filter((m) => m.batch === rollout.currentBatch && m.state === 'pending');
  if (pending.length === 0) return 0;
  const manifest = await manifestOf(ctx, rollout.model, rollout.version);
  if (!manifest) return 0;
  const { maxPerMinute, maxConcurrentPerSite } = rollout.plan;
  const startedLastMinute = members.filter(
    (m) => m.assignedAt && now - Date.parse(m.assignedAt) < 60_000,
  ).length;
  let allowance = maxPerMinute > 0 ? Math.max(0, maxPerMinute - startedLastMinute) : Number.POSITIVE_INFINITY;
  const inFlight = new Map<string, number>();
  const devices = new Map((await ctx.store.devices.list({ includeRevoked: true })).map((d) => [d.id, d]));
  for (const m of members) {
    const site = siteOf(devices.get(m.deviceId)?.tags ?? []);
    if (site && m.state !== 'pending' && !terminalDeviceStates.includes(m.state))
      inFlight.set(site, (inFlight.get(site) ?? 0) + 1);
  }
  let assigned = 0;
  for (const m of pending) {
    if (allowance <= 0) break;
    const device = devices.get(m.deviceId);
    if (!device || device.revokedAt) {
      await ctx.store.rollouts.updateDevice(rollout.id, m.deviceId, {
        state: 'skipped',
        reason: 'device revoked',
      });
      continue;
    }
    const site = siteOf(device.tags);
    if (site && maxConcurrentPerSite > 0 && (inFlight.get(site) ?? 0) >= maxConcurrentPerSite) continue;
    await assignDevice(ctx, rollout, manifest, device);
    if (site) inFlight.set(site, (inFlight.get(site) ?? 0) + 1);
    allowance--;
    assigned++;
  }
  return assigned;
}

/** How long an assigned device may stay silent before its desired state is written and sent again. */
export const RESEND_AFTER_MS = 30_000;
// When each silent device was last sent its state again, per hub (`rolloutId/deviceId` → ms).
const resentAt = new WeakMap<HubContext, Map<string, number>>();

/**
 * Assigning is two steps (mark the device assigned, then write and publish its desired state); a
 * replica killed between them leaves a device that waits for a message nobody sent, until the
 * device timeout. The periodic tick calls this for devices assigned more than RESEND_AFTER_MS ago
 * that have not mentioned the deployment: it completes the write, or publishes the stored state
 * again (retained, so a device that was offline gets it when it connects). Returns whether it sent.
 */
export async function resendAssignment(
  ctx: HubContext,
  rollout: RolloutRecord,
  m: RolloutDeviceRecord,
  now: number,
): Promise<boolean> {
  if (m.state !== 'assigned' || !m.assignedAt) return false;
  let sent = resentAt.get(ctx);
  if (!sent) {
    sent = new Map();
    resentAt.set(ctx, sent);
  }
  const key = `${rollout.id}/${m.deviceId}`;
  const last = Math.max(Date.parse(m.assignedAt), sent.get(key) ?? 0);
  if (now - last < RESEND_AFTER_MS) return false;
  const device = await ctx.store.devices.get(m.deviceId);
  if (!device || device.revokedAt) return false;
  if (device.reported?.models[rollout.model]?.deployment?.deploymentId === rollout.id) {
    sent.delete(key);
    return false;
  }
  sent.set(key, now);
  if (device.desired?.models[rollout.model]?.deploymentId === rollout.id) {
    await publishDesired(ctx, device.id, device.desired);
    return true;
  }
  const signed = await signedVersionOf(ctx, rollout.model, rollout.version);
  const a = signed?.manifest.artifacts.find((x) => x.sha256 === m.artifactSha256);
  if (!signed || !a) return false;
  await setDesiredModel(ctx, device.id, rollout.model, desiredEntry(signed, rollout.id, a));
  return true;
}

/** Return every device this rollout touched to what it ran before (or remove the model it never had). */
export async function rollbackDevices(
  ctx: HubContext,
  rollout: RolloutRecord,
  reason: string,
): Promise<number> {
  let n = 0;
  for (const m of await ctx.store.rollouts.devices(rollout.id)) {
    if (m.state === 'pending' || m.state === 'skipped' || m.state === 'cancelled') {
      if (m.state === 'pending')
        await ctx.store.rollouts.updateDevice(rollout.id, m.deviceId, {
          state: 'cancelled',
          reason: 'rollout rolled back',
        });
      continue;
    }
    const device = await ctx.store.devices.get(m.deviceId);
    const desired = device?.desired?.models[rollout.model];
    // Only undo what this rollout put there; a newer rollout's assignment stays.
    if (desired && desired.deploymentId !== rollout.id) continue;
    const previous = m.previous;
    await setDesiredModel(
      ctx,
      m.deviceId,
      rollout.model,
      previous ? { ...previous, deploymentId: `${rollout.id}:rollback`, rollback: true } : null,
    );
    await ctx.store.rollouts.updateDevice(rollout.id, m.deviceId, {
      state: 'rolled-back',
      reason: `${reason}; returned to ${previous ? `${previous.name}@${previous.version}` : 'no model'}`,
    });
    n++;
  }
  return n;
}
