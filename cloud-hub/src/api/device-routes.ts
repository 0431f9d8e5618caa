/** The fleet: devices, their telemetry and events, renaming/tagging, revocation. */
import { schemas } from '@edgefleet/protocol';
import { z } from 'zod';
import { principalName } from '../auth/principal.ts';
import type { HubContext } from '../context.ts';
import { HubError, notFound } from '../errors.ts';
import type { DeviceRecord } from '../store/devices.ts';
import { type ApiRouter, param, queryInt } from './router.ts';

const patchDevice = z
  .object({
    name: z.string().min(1).max(128).optional(),
    tags: z.array(schemas.tag).max(32).optional(),
    profile: z.string().max(64).nullable().optional(),
  })
  .strict();

/** A device as the API shows it, with how fresh its telemetry is. */
export function deviceView(d: DeviceRecord) {
  return {
    ...d,
    lastTelemetryAgeSeconds: d.lastTelemetry
      ? Math.max(0, (Date.now() - Date.parse(d.lastTelemetry.ts)) / 1000)
      : null,
  };
}

export function deviceRoutes(router: ApiRouter, ctx: HubContext): void {
  router.define(
    {
      method: 'get',
      path: '/devices',
      access: 'read',
      summary: 'List devices with status and latest telemetry',
      tag: 'devices',
    },
    async (c) => {
      const devices = await ctx.store.devices.list({ includeRevoked: c.req.query('revoked') === 'true' });
      return c.json({ devices: devices.map(deviceView) });
    },
  );
  router.define(
    { method: 'get', path: '/devices/:id', access: 'read', summary: 'One device', tag: 'devices' },
    async (c) => {
      const d = await ctx.store.devices.get(param(c, 'id'));
      if (!d) throw notFound(`device ${param(c, 'id')}`);
      return c.json(deviceView(d));
    },
  );
  router.define(
    {
      method: 'patch',
      path: '/devices/:id',
      access: 'write',
      summary: 'Rename, retag or set the profile of a device',
      tag: 'devices',
      body: patchDevice,
    },
    async (c, { body, principal }) => {
      const id = param(c, 'id');
      if (!(await ctx.store.devices.update(id, body))) throw notFound(`device ${id}`);
      await ctx.store.events.add({
        kind: 'device.updated',
        subject: id,
        actor: principalName(principal),
        message: `updated ${Object.keys(body).join(', ')}`,
        data: body,
      });
      ctx.live.emit({ type: 'device', deviceId: id });
      return c.json(deviceView((await ctx.store.devices.get(id)) as DeviceRecord));
    },
  );
  router.define(
    {
      method: 'delete',
      path: '/devices/:id',
      access: 'write',
      summary: 'Revoke a device: its secret stops working at once',
      tag: 'devices',
    },
    async (c, { principal }) => {
      const id = param(c, 'id');
      if (!(await ctx.store.devices.revoke(id))) throw notFound(`active device ${id}`);
      await ctx.broker.disconnectDevice(id);
      await ctx.store.events.add({
        kind: 'device.revoked',
        subject: id,
        actor: principalName(principal),
        message: 'device revoked; its connections were closed',
      });
      ctx.live.emit({ type: 'device', deviceId: id });
      return c.json({ id, revoked: true });
    },
  );
  router.define(
    {
      method: 'get',
      path: '/devices/:id/telemetry',
      access: 'read',
      summary: 'Telemetry samples (?sinceSeq, ?limit)',
      tag: 'devices',
    },
    async (c) => {
      const id = param(c, 'id');
      if (!(await ctx.store.devices.get(id))) throw notFound(`device ${id}`);
      const samples = await ctx.store.devices.telemetry(id, {
        sinceSeq: queryInt(c, 'sinceSeq', -1, -1),
        limit: queryInt(c, 'limit', 500, 1, 10_000),
      });
      return c.json({ deviceId: id, samples });
    },
  );
  router.define(
    {
      method: 'get',
      path: '/devices/:id/events',
      access: 'read',
      summary: 'Recent events of a device',
      tag: 'devices',
    },
    async (c) => {
      const id = param(c, 'id');
      if (!(await ctx.store.devices.get(id))) throw notFound(`device ${id}`);
      return c.json({
        events: await ctx.store.events.list({ subject: id, limit: queryInt(c, 'limit', 100, 1, 1000) }),
      });
    },
  );
  router.define(
    {
      method: 'get',
      path: '/me',
      access: 'read-or-device',
      summary: 'Who this token belongs to',
      tag: 'system',
    },
    async (c, { principal }) => {
      if (!principal) throw new HubError('UNAUTHORIZED', 'no token');
      return c.json(principal);
    },
  );
  router.define(
    {
      method: 'get',
      path: '/events',
      access: 'read',
      summary: 'Recent events across the fleet',
      tag: 'system',
    },
    async (c) =>
      c.json({ events: await ctx.store.events.list({ limit: queryInt(c, 'limit', 100, 1, 1000) }) }),
  );
}
