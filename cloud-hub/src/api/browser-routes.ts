/**
 * What a device sends over MQTT, taken over HTTP instead: browsers cannot keep an MQTT session
 * across page loads (packages/protocol/src/browser.ts). Same payloads, same storage, same dedupe
 * by seq as the MQTT ingest; each device may post only for itself.
 */
import { type ReportedState, reportedState, statsMessage, statsWindowEnvelope } from '@edgefleet/protocol';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import type { HubContext } from '../context.ts';
import { HubError, notFound } from '../errors.ts';
import { onDeviceReported } from '../rollouts/engine.ts';
import { type ApiRouter, param } from './router.ts';

/**
 * `statsMessage` as the store can take it: seq is a 32-bit integer column in PostgreSQL and the
 * window a NOT NULL JSON column, so both are checked here (400 naming the field, not a 500).
 */
const storableStats = statsMessage.extend({
  windows: z
    .array(
      statsWindowEnvelope.extend({
        seq: z.number().int().nonnegative().max(2_147_483_647),
        window: z.unknown().refine((w) => w !== undefined, 'a window is required'),
      }),
    )
    .min(1)
    .max(1000),
});

/** Bodies are read whole before validation: cap them (the SDK sends at most 100 small windows). */
const limit = (maxSize: number) =>
  bodyLimit({
    maxSize,
    onError: () => {
      throw new HubError('PAYLOAD_TOO_LARGE', `request body is larger than ${maxSize / 1024 / 1024} MiB`);
    },
  });

/**
 * An HTTP device has no MQTT status or last will, so each request is its sign of life: the first
 * one after enrollment (or after it was marked offline) turns it online, the rest bump last seen.
 * Returns whether the status changed.
 */
async function markSeen(ctx: HubContext, deviceId: string, reported?: ReportedState): Promise<boolean> {
  const device = await ctx.store.devices.get(deviceId);
  if (!device) throw notFound(`device ${deviceId}`);
  const at = new Date().toISOString();
  if (device.status === 'online') {
    if (!reported) await ctx.store.devices.touch(deviceId, at); // setReported already stamps it
    return false;
  }
  const agentVersion = reported?.agentVersion ?? device.agentVersion ?? 'unknown';
  await ctx.store.devices.setStatus(deviceId, 'online', agentVersion, at);
  await ctx.store.events.add({
    kind: 'device.online',
    subject: deviceId,
    actor: `device:${deviceId}`,
    message: `online (agent ${agentVersion}, over HTTP)`,
  });
  return true;
}

export function browserDeviceRoutes(router: ApiRouter, ctx: HubContext): void {
  router.app.use('/devices/:id/stats', limit(8 * 1024 * 1024));
  router.app.use('/devices/:id/reported', limit(1024 * 1024));
  router.define(
    {
      method: 'post',
      path: '/devices/:id/stats',
      access: 'device',
      ownDeviceParam: 'id',
      summary: 'Prediction-statistics windows from the device itself (as on MQTT; seq dedupes)',
      tag: 'devices',
      body: storableStats,
    },
    async (c, { body }) => {
      const deviceId = param(c, 'id');
      const accepted = await ctx.store.stats.insert(body.windows.map((window) => ({ deviceId, window })));
      // Like MQTT stats, windows alone do not wake the dashboard; a status change does.
      if (await markSeen(ctx, deviceId)) ctx.live.emit({ type: 'device', deviceId });
      return c.json({ accepted, duplicates: body.windows.length - accepted });
    },
  );
  router.define(
    {
      method: 'put',
      path: '/devices/:id/reported',
      access: 'device',
      ownDeviceParam: 'id',
      summary: 'Reported state from the device itself (as on MQTT): what runs, runtimes and why not',
      tag: 'devices',
      body: reportedState,
    },
    async (c, { body }) => {
      const deviceId = param(c, 'id');
      await ctx.store.devices.setReported(deviceId, body);
      await markSeen(ctx, deviceId, body);
      // Rollout states follow reports whichever way they arrive. MQTT chunk transfers do not
      // apply: an HTTP device fetches artifacts over HTTP.
      await onDeviceReported(ctx, deviceId, body);
      ctx.live.emit({ type: 'device', deviceId });
      return c.json({ ok: true });
    },
  );
}
