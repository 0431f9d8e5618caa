import { enrollRequest } from '@edgefleet/protocol';
import type { HubContext } from '../context.ts';
import { enrollDevice } from '../enrollment.ts';
import { failureRateLimit } from './rate-limit.ts';
import type { ApiRouter } from './router.ts';

/** The host part of a Host header (IPv6 literals keep their brackets). */
function hostOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(\[[^\]]+\]|[^:]+)/.exec(header);
  return m?.[1];
}

export function enrollRoutes(router: ApiRouter, ctx: HubContext): void {
  router.app.use('/enroll', failureRateLimit({ windowMs: 60_000, max: ctx.settings.enrollPerMinute }));
  router.define(
    {
      method: 'post',
      path: '/enroll',
      access: 'public',
      summary: 'Enroll a device with an enrollment token',
      tag: 'devices',
      body: enrollRequest,
    },
    async (c, { body }) => c.json(await enrollDevice(ctx, body, hostOf(c.req.header('host'))), 201),
  );
}
