/** Writing a device's desired state (store first, then the retained MQTT message). */
import {
  type DesiredAgent,
  type DesiredModel,
  type DesiredState,
  encodeMessage,
  topics,
} from '@edgefleet/protocol';
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
    const next: DesiredState = {
      revision,
      issuedAt: new Date().toISOString(),
      models,
      config: current?.config ?? {},
    };
    // A model deployment must not cancel an agent update in flight.
    if (current?.agent) next.agent = current.agent;
    return next;
  });
  if (desired) await publishDesired(ctx, deviceId, desired);
  return desired;
}

/**
 * Set (or with `null` remove) the agent release a device should run; publishes the new state.
 * Models and config stay as they are: an agent update never changes what the device serves.
 */
export async function setDesiredAgent(
  ctx: HubContext,
  deviceId: string,
  entry: DesiredAgent | null,
): Promise<DesiredState | undefined> {
  const desired = await ctx.store.devices.writeDesired(deviceId, (current, revision) => {
    const next: DesiredState = {
      revision,
      issuedAt: new Date().toISOString(),
      models: current?.models ?? {},
      config: current?.config ?? {},
    };
    if (entry) next.agent = entry;
    return next;
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
