/** Writing a device's desired state (store first, then the retained MQTT message). */
import { type DesiredModel, type DesiredState, encodeMessage, topics } from '@edgefleet/protocol';
import type { HubContext } from '../context.ts';

/** Set (or with `null` remove) the model a device should run in `slot`; publishes the new state. */
export async function setDesiredModel(
  ctx: HubContext,
  deviceId: string,
  slot: string,
  entry: DesiredModel | null,
): Promise<DesiredState | undefined> {
  const desired = await ctx.store.devices.writeDesired(deviceId, (current, revision) => {
    const models = { ...(current?.models ?? {}) };
    if (entry) models[slot] = entry;
    else delete models[slot];
    return { revision, issuedAt: new Date().toISOString(), models, config: current?.config ?? {} };
  });
  if (desired) await publishDesired(ctx, deviceId, desired);
  return desired;
}

export async function publishDesired(
  ctx: HubContext,
  deviceId: string,
  desired: DesiredState,
): Promise<void> {
  await ctx.broker.publish(topics.desired(deviceId), encodeMessage(desired), { retain: true });
}

/** Re-publish every device's desired state (an embedded broker forgets retained messages on restart). */
export async function republishAllDesired(ctx: HubContext): Promise<number> {
  let n = 0;
  for (const device of await ctx.store.devices.list()) {
    if (device.desired) {
      await publishDesired(ctx, device.id, device.desired);
      n++;
    }
  }
  return n;
}
