/**
 * Alert webhooks: JSON POSTed to each configured URL, signed like GitHub's (`X-Edgefleet-Signature:
 * sha256=<HMAC of the body>`) when a secret is set, retried with backoff. Delivery is best effort
 * and never blocks the caller; a receiver that stays down is logged, not queued forever.
 */
import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';

export interface WebhookEvent {
  /** e.g. `drift.drift`, `drift.ok`. */
  event: string;
  at: string;
  [key: string]: unknown;
}

export interface WebhookSender {
  send(event: WebhookEvent): void;
  /** Wait for deliveries in flight (retries included), e.g. before shutdown. */
  idle(): Promise<void>;
  stop(): void;
}

export interface WebhookOptions {
  urls: string[];
  secret?: string;
  logger: Logger;
  /** Delays before each retry (default 1 s, 5 s, 25 s). */
  retryDelaysMs?: number[];
  timeoutMs?: number;
}

export function createWebhookSender(o: WebhookOptions): WebhookSender {
  const inFlight = new Set<Promise<void>>();
  const controller = new AbortController();
  const delays = o.retryDelaysMs ?? [1000, 5000, 25_000];

  const wait = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      controller.signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });

  async function deliver(url: string, body: string, event: string): Promise<void> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'edgefleet-hub',
      'x-edgefleet-event': event,
    };
    if (o.secret)
      headers['x-edgefleet-signature'] =
        `sha256=${createHmac('sha256', o.secret).update(body).digest('hex')}`;
    let lastError = '';
    for (let attempt = 0; attempt <= delays.length; attempt++) {
      if (controller.signal.aborted) return;
      try {
        const response = await fetch(url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.any([controller.signal, AbortSignal.timeout(o.timeoutMs ?? 5000)]),
        });
        if (response.ok) return;
        lastError = `HTTP ${response.status}`;
        // A 4xx other than 408/429 will not get better by retrying.
        if (response.status < 500 && response.status !== 408 && response.status !== 429) break;
      } catch (error) {
        lastError = (error as Error).message;
      }
      if (attempt < delays.length) await wait(delays[attempt]!);
    }
    if (!controller.signal.aborted)
      o.logger.warn({ url, event, error: lastError }, 'webhook delivery failed');
  }

  return {
    send(event) {
      const body = JSON.stringify(event);
      for (const url of o.urls) {
        const p = deliver(url, body, event.event).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
    },
    async idle() {
      await Promise.allSettled([...inFlight]);
    },
    stop() {
      controller.abort();
    },
  };
}
