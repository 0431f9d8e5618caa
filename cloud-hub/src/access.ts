/**
 * What a device may download: the model versions its desired state names or that it reports
 * running (active or previous, for rollback). Device A can never fetch B's assignments by guessing.
 */
import type { Principal } from './auth/principal.ts';
import type { HubContext } from './context.ts';
import { HubError } from './errors.ts';

async function versionsVisibleToDevice(ctx: HubContext, deviceId: string): Promise<Set<string>> {
  const device = await ctx.store.devices.get(deviceId);
  const visible = new Set<string>();
  if (!device) return visible;
  for (const m of Object.values(device.desired?.models ?? {})) {
    visible.add(`${m.name}@${m.version}`);
    if (m.shadow) visible.add(`${m.shadow.name}@${m.shadow.version}`);
  }
  for (const slot of Object.values(device.reported?.models ?? {})) {
    if (slot.active) visible.add(`${slot.active.name}@${slot.active.version}`);
    if (slot.previous) visible.add(`${slot.previous.name}@${slot.previous.version}`);
  }
  return visible;
}

const denied = () => new HubError('FORBIDDEN', 'this device is not assigned that model version');

export async function assertMayReadVersion(
  ctx: HubContext,
  principal: Principal | undefined,
  model: string,
  version: string,
): Promise<void> {
  if (principal?.kind !== 'device') return;
  if (!(await versionsVisibleToDevice(ctx, principal.deviceId)).has(`${model}@${version}`)) throw denied();
}

export async function assertMayReadArtifact(
  ctx: HubContext,
  principal: Principal | undefined,
  sha256: string,
): Promise<void> {
  if (principal?.kind !== 'device') return;
  const visible = await versionsVisibleToDevice(ctx, principal.deviceId);
  const versions = await ctx.store.models.versionsWithFile(sha256);
  if (!versions.some((v) => visible.has(`${v.model}@${v.version}`))) throw denied();
}
