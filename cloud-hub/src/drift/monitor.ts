/**
 * The hub's drift watch: periodically (one replica at a time, under a lease) every model version
 * that received statistics lately is evaluated; a change of status is recorded as an event,
 * pushed to dashboards and sent to the alert webhooks. The last status per version lives in the
 * shared settings table, so a replica taking over does not re-announce what was announced.
 * Rollout gates read `driftStatus`, which answers from a short-lived cache.
 */
import type { HubContext } from '../context.ts';
import type { WebhookEvent, WebhookSender } from '../webhooks.ts';
import { type DriftReport, evaluateVersionDrift } from './evaluate.ts';

export interface DriftMonitorOptions {
  /** How often versions are evaluated (default 30 s). */
  intervalMs?: number;
  /** Versions whose newest window is older than this are not re-evaluated (default 1 h). */
  activeWithinMs?: number;
  webhooks: WebhookSender;
}

type Status = DriftReport['status'];
const CACHE_MS = 10_000;

export function createDriftMonitor(ctx: HubContext, o: DriftMonitorOptions) {
  const intervalMs = o.intervalMs ?? 30_000;
  const cache = new Map<string, { at: number; report: DriftReport | undefined }>();

  const evaluate = async (model: string, version: string): Promise<DriftReport | undefined> => {
    try {
      const report = await evaluateVersionDrift(ctx, model, version);
      cache.set(`${model}@${version}`, { at: Date.now(), report });
      return report;
    } catch (error) {
      // A version without a profile has no drift status; anything else is worth a log line.
      if ((error as { code?: string }).code !== 'NOT_FOUND')
        ctx.logger.warn({ err: error, model, version }, 'drift evaluation failed');
      cache.set(`${model}@${version}`, { at: Date.now(), report: undefined });
      return undefined;
    }
  };

  /** One pass over the recently active versions; announces status changes. */
  async function tick(): Promise<void> {
    const since = new Date(Date.now() - (o.activeWithinMs ?? 3600_000)).toISOString();
    for (const { model, version } of await ctx.store.stats.activeVersions(since)) {
      const report = await evaluate(model, version);
      if (!report) continue;
      const key = `drift-status:${model}@${version}`;
      const previous = ((await ctx.store.settings.get(key)) ?? 'insufficient-data') as Status;
      if (previous === report.status) continue;
      await ctx.store.settings.set(key, report.status);
      const subject = `${model}@${version}`;
      const message =
        report.status === 'ok' || report.status === 'insufficient-data'
          ? `drift status ${previous} → ${report.status}`
          : `drift status ${previous} → ${report.status}: ${report.variables.join(', ')}`;
      await ctx.store.events.add({
        kind: `drift.${report.status}`,
        subject,
        actor: 'hub',
        message,
        data: { previous, status: report.status, variables: report.variables, n: report.fleet.n },
      });
      ctx.live.emit({ type: 'drift', model, version });
      ctx.logger.info({ model, version, previous, status: report.status }, 'drift status changed');
      o.webhooks.send(driftAlert(report, previous));
    }
  }

  const timer = setInterval(() => {
    ctx.store.leases
      .acquire('drift:tick', ctx.replicaId, intervalMs * 3)
      .then((held) => (held ? tick() : undefined))
      .catch((error: unknown) => ctx.logger.error({ err: error }, 'drift tick failed'));
  }, intervalMs);
  timer.unref();

  return {
    tick,
    /** For rollout gates: a status no older than CACHE_MS, or undefined without a profile/data. */
    async status(model: string, version: string) {
      const hit = cache.get(`${model}@${version}`);
      const report = hit && Date.now() - hit.at < CACHE_MS ? hit.report : await evaluate(model, version);
      if (!report || report.status === 'insufficient-data') return undefined;
      return { status: report.status, variables: report.variables };
    },
    stop(): void {
      clearInterval(timer);
    },
  };
}

/** The webhook body for a status change: enough to act on without calling back. */
export function driftAlert(report: DriftReport, previous: Status): WebhookEvent {
  return {
    event: `drift.${report.status}`,
    at: report.evaluatedAt,
    model: report.model,
    version: report.version,
    status: report.status,
    previous,
    variables: report.variables,
    predictions: report.fleet.n,
    driftingDeviceShare: report.driftingDeviceShare,
    devices: report.devices
      .filter((d) => d.status === 'warning' || d.status === 'drift')
      .map((d) => ({ deviceId: d.deviceId, status: d.status, variables: d.evaluation.drifted })),
  };
}
