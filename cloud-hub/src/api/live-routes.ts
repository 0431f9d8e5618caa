/** Live updates for the dashboard: server-sent events of fleet changes, as fetch-readable text/event-stream. */
import { streamSSE } from 'hono/streaming';
import type { HubContext } from '../context.ts';
import type { LiveEvent } from '../live.ts';
import type { ApiRouter } from './router.ts';

export function liveRoutes(router: ApiRouter, ctx: HubContext): void {
  router.define(
    {
      method: 'get',
      path: '/live',
      access: 'read',
      summary: 'Server-sent events: device, telemetry, rollout, model and drift changes',
      tag: 'system',
    },
    (c) =>
      streamSSE(c, async (stream) => {
        const queue: LiveEvent[] = [];
        let wake: (() => void) | undefined;
        const unsubscribe = ctx.live.subscribe((event) => {
          if (queue.length < 1000) queue.push(event); // a slow reader loses events, never the hub's memory
          wake?.();
        });
        stream.onAbort(() => {
          unsubscribe();
          wake?.();
        });
        await stream.writeSSE({ event: 'hello', data: JSON.stringify({ at: new Date().toISOString() }) });
        while (!stream.aborted && !stream.closed) {
          const event = queue.shift();
          if (event) {
            await stream.writeSSE({ event: event.type, data: JSON.stringify(event) });
            continue;
          }
          // Wait for an event, or send a comment every 15 s so proxies keep the connection.
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, 15_000).unref();
          });
          wake = undefined;
          if (queue.length === 0 && !stream.aborted) await stream.write(': keep-alive\n\n');
        }
        unsubscribe();
      }),
  );
}
