/** Drift of a model version: fleet status, per-variable statistics with histograms, per-device status. */
import type { HubContext } from '../context.ts';
import { type DriftReport, evaluateVersionDrift } from '../drift/evaluate.ts';
import { type ApiRouter, param, queryInt } from './router.ts';

/** The API view: the fleet's variables in full (the dashboard plots them), devices summarised. */
export function driftView(r: DriftReport) {
  return {
    model: r.model,
    version: r.version,
    evaluatedAt: r.evaluatedAt,
    status: r.status,
    drifted: r.variables,
    n: r.fleet.n,
    minWindow: r.fleet.minWindow,
    driftShare: r.fleet.driftShare,
    errorRate: r.fleet.errorRate,
    latencyP50Ms: r.fleet.latencyP50Ms ?? null,
    latencyP95Ms: r.fleet.latencyP95Ms ?? null,
    performance: r.fleet.performance ?? null,
    variables: r.fleet.variables,
    driftingDeviceShare: r.driftingDeviceShare,
    devices: r.devices.map((d) => ({
      deviceId: d.deviceId,
      status: d.status,
      qValue: d.qValue,
      windows: d.windows,
      n: d.evaluation.n,
      drifted: d.evaluation.drifted,
    })),
    windows: r.windows,
    lookbackMs: r.lookbackMs,
  };
}

export function driftRoutes(router: ApiRouter, ctx: HubContext): void {
  router.define(
    {
      method: 'get',
      path: '/models/:name/versions/:version/drift',
      access: 'read',
      summary:
        'Drift of a version against its reference profile: status, variables behind it, per-variable PSI/KS/χ²/JS/W1 and histograms, per-device status (query: device, lookback in seconds)',
      tag: 'models',
    },
    async (c) => {
      const device = c.req.query('device');
      const report = await evaluateVersionDrift(ctx, param(c, 'name'), param(c, 'version'), {
        lookbackMs: queryInt(c, 'lookback', 24 * 3600, 60, 90 * 24 * 3600) * 1000,
        ...(device ? { deviceId: device } : {}),
      });
      return c.json(driftView(report));
    },
  );
}
