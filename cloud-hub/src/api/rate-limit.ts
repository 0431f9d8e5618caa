/**
 * A fixed-window limit on failed attempts per client address, as a Hono middleware factory. Only
 * refusals count (by default 401s), so a factory enrolling a thousand devices from one address is
 * never slowed, while someone guessing tokens is stopped after `max` wrong guesses.
 */
import { getConnInfo } from '@hono/node-server/conninfo';
import type { MiddlewareHandler } from 'hono';
import { HubError } from '../errors.ts';

export function failureRateLimit(options: {
  windowMs: number;
  max: number;
  counts?: (status: number) => boolean;
  now?: () => number;
}): MiddlewareHandler {
  const now = options.now ?? Date.now;
  const counts = options.counts ?? ((status) => status === 401);
  const windows = new Map<string, { start: number; failures: number }>();
  return async (c, next) => {
    let address = 'unknown';
    try {
      address = getConnInfo(c).remote.address ?? 'unknown';
    } catch {
      // app.request() in tests has no socket; everyone shares one window.
    }
    const t = now();
    let w = windows.get(address);
    if (!w || t - w.start >= options.windowMs) {
      if (windows.size > 10_000) windows.clear();
      w = { start: t, failures: 0 };
      windows.set(address, w);
    }
    if (w.failures >= options.max) {
      const wait = Math.ceil((w.start + options.windowMs - t) / 1000);
      c.header('Retry-After', String(wait));
      throw new HubError(
        'RATE_LIMITED',
        `too many failed attempts from this address; try again in ${wait} s`,
      );
    }
    try {
      await next();
    } finally {
      if (counts(c.res.status)) w.failures++;
    }
  };
}
