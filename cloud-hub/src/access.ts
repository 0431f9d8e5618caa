/**
 * What a device may download: the model versions its desired state names or that it reports
 * running (active or previous, for rollback), and the agent release its desired state names.
 * Device A can never fetch B's assignments by guessing.
 */
import type { Principal } from './auth/principal.ts';
import type { HubContext } from './context.ts';
import { HubError } from './errors.ts';
import type { DeviceRecord } from './store/devices.ts';

function versionsVisibleToDevice(device: DeviceRecord | undefined): Set<string> {
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
  const visible = versionsVisibleToDevice(await ctx.store.devices.get(principal.deviceId));
  if (!visible.has(`${model}@${version}`)) throw denied();
}

export async function assertMayReadArtifact(
  ctx: HubContext,
  principal: Principal | undefined,
  sha256: string,
): Promise<void> {
  if (principal?.kind !== 'device') return;
  const device = await ctx.store.devices.get(principal.deviceId);
  // Its own agent release (self-update): the desired state names the archive by sha256. Only the
  // desired one: a release the device ran before is already on its disk.
  if (device?.desired?.agent?.artifact.sha256 === sha256) return;
  const visible = versionsVisibleToDevice(device);
  const versions = await ctx.store.models.versionsWithFile(sha256);
  if (!versions.some((v) => visible.has(`${v.model}@${v.version}`)))
    throw new HubError('FORBIDDEN', 'this device is not assigned that artifact');
}
