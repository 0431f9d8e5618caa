import { browserEnrollRequest, browserRoutes, enrollRequest } from '@edgefleet/protocol';
import type { HubContext } from '../context.ts';
import { enrollBrowser, enrollDevice } from '../enrollment.ts';
import { failureRateLimit } from './rate-limit.ts';
import type { ApiRouter } from './router.ts';

/** The host part of a Host header (IPv6 literals keep their brackets). */
function hostOf(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^(\[[^\]]+\]|[^:]+)/.exec(header);
  return m?.[1];
}

export function enrollRoutes(router: ApiRouter, ctx: HubContext): void {
  // One limiter for both doors, so guessing tokens through the browser route buys no extra tries.
  const limit = failureRateLimit({ windowMs: 60_000, max: ctx.settings.enrollPerMinute });
  router.app.use('/enroll', limit);
  router.app.use(browserRoutes.enroll, limit);
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
  // Browsers enroll with the same tokens and report over HTTP (packages/protocol/src/browser.ts).
  router.define(
    {
      method: 'post',
      path: browserRoutes.enroll,
      access: 'public',
      summary: 'Enroll a browser (the web SDK) as a device with an enrollment token',
      tag: 'devices',
      body: browserEnrollRequest,
    },
    async (c, { body }) => c.json(await enrollBrowser(ctx, body), 201),
  );
}
