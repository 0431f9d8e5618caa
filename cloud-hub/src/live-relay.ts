/** Relaying live events between hub replicas through the broker (`edgefleet/v1/hub/live`). */
import type { HubContext } from './context.ts';
import type { LiveEvent } from './live.ts';

export const HUB_LIVE_TOPIC = 'edgefleet/v1/hub/live';

export async function relayLiveEvents(ctx: HubContext): Promise<void> {
  await ctx.broker.onHubMessage(HUB_LIVE_TOPIC, (payload) => {
    try {
      const message = JSON.parse(payload.toString()) as { from: string; event: LiveEvent };
      if (message.from !== ctx.replicaId && typeof message.event?.type === 'string')
        ctx.live.receive(message.event);
    } catch {
      ctx.logger.debug('unreadable live relay message ignored');
    }
  });
  const lastTelemetry = new Map<string, number>();
  ctx.live.setRelay((event) => {
    // Telemetry is frequent: relay at most one event per device every 2 s (enough for live charts).
    if (event.type === 'telemetry') {
      const now = Date.now();
      if (now - (lastTelemetry.get(event.deviceId) ?? 0) < 2000) return;
      if (lastTelemetry.size > 100_000) lastTelemetry.clear();
      lastTelemetry.set(event.deviceId, now);
    }
    ctx.broker
      .publish(HUB_LIVE_TOPIC, JSON.stringify({ from: ctx.replicaId, event }), { retain: false })
      .catch(() => undefined);
  });
}
