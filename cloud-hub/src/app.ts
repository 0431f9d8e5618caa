/** The hub's HTTP app: health, metrics, OpenAPI, /api/v1 with auth on every route, JSON errors. */
import { EDGEFLEET_VERSION, EdgefleetError, ValidationError } from '@edgefleet/protocol';
import { Hono } from 'hono';
import { agentReleaseRoutes } from './api/agent-release-routes.ts';
import { artifactRoutes } from './api/artifact-routes.ts';
import { browserDeviceRoutes } from './api/browser-routes.ts';
import { deviceRoutes } from './api/device-routes.ts';
import { driftRoutes } from './api/drift-routes.ts';
import { enrollRoutes } from './api/enroll-routes.ts';
import { keyRoutes } from './api/key-routes.ts';
import { liveRoutes } from './api/live-routes.ts';
import { modelRoutes } from './api/model-routes.ts';
import { rolloutRoutes } from './api/rollout-routes.ts';
import { createApiRouter, type HubEnv, openApiDocument } from './api/router.ts';
import { tokenRoutes } from './api/token-routes.ts';
import { resolvePrincipal } from './auth/principal.ts';
import type { HubContext } from './context.ts';
import { dashboardDir, serveDirectory } from './dashboard-assets.ts';
import { httpStatusFor } from './errors.ts';
import { serveSdk } from './sdk-assets.ts';

export function createApp(ctx: HubContext): Hono<HubEnv> {
  const app = new Hono<HubEnv>();

  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    // A route that wrote to the Node response itself (artifact bytes) returns a placeholder
    // Response; the status that went out is on the Node response.
    const sent = c.res.headers.has('x-hono-already-sent')
      ? (c.env as { outgoing?: { statusCode: number } } | undefined)?.outgoing?.statusCode
      : undefined;
    ctx.metrics.httpRequests.inc({ method: c.req.method, status: String(sent ?? c.res.status) });
    ctx.metrics.httpDuration.observe({ method: c.req.method }, (performance.now() - started) / 1000);
  });

  app.use('/api/*', async (c, next) => {
    const header = c.req.header('authorization');
    const secret = header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
    c.set('principal', secret ? await resolvePrincipal(ctx.store, secret) : undefined);
    await next();
  });

  app.onError((error, c) => {
    if (error instanceof EdgefleetError) {
      const status = httpStatusFor(error);
      const field =
        error instanceof ValidationError ? error.field : (error.details?.field as string | undefined);
      if (status >= 500) ctx.logger.error({ err: error, path: c.req.path }, 'request failed');
      return c.json(
        { error: { code: error.code, message: error.message, ...(field !== undefined ? { field } : {}) } },
        status as 400,
      );
    }
    ctx.logger.error({ err: error, path: c.req.path }, 'request failed');
    return c.json({ error: { code: 'INTERNAL', message: 'internal error; see the hub log' } }, 500);
  });

  app.get('/healthz', async (c) => {
    const db = await ctx.store.ping();
    const broker = ctx.broker.isConnected();
    return c.json(
      { status: db && broker ? 'ok' : 'degraded', version: EDGEFLEET_VERSION, db, broker },
      db && broker ? 200 : 503,
    );
  });
  app.get('/metrics', async (c) => {
    ctx.metrics.devicesOnline.set(
      (await ctx.store.devices.list()).filter((d) => d.status === 'online').length,
    );
    return c.text(await ctx.metrics.registry.metrics(), 200, {
      'Content-Type': ctx.metrics.registry.contentType,
    });
  });

  const api = createApiRouter();
  enrollRoutes(api, ctx);
  tokenRoutes(api, ctx);
  keyRoutes(api, ctx);
  modelRoutes(api, ctx);
  driftRoutes(api, ctx);
  artifactRoutes(api, ctx);
  deviceRoutes(api, ctx);
  browserDeviceRoutes(api, ctx);
  rolloutRoutes(api, ctx);
  agentReleaseRoutes(api, ctx);
  liveRoutes(api, ctx);
  app.route('/api/v1', api.app);
  app.get('/openapi.json', (c) => c.json(openApiDocument(api.table, EDGEFLEET_VERSION)));
  app.all('/api/*', (c) =>
    c.json({ error: { code: 'NOT_FOUND', message: `no route ${c.req.method} ${c.req.path}` } }, 404),
  );
  serveSdk(app);
  // The dashboard is a single page app: unknown paths outside /api fall back to its index.html.
  serveDirectory(app as never, '/', dashboardDir(), { fallback: 'index.html' });
  return app;
}
