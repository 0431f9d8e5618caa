/**
 * Browsers in the fleet (served by the hub, cloud-hub/src/api/enroll-routes.ts and
 * browser-routes.ts; used by packages/web). A browser cannot hold an MQTT session across page
 * loads, so it enrolls and reports over HTTP with the same payloads an agent publishes over MQTT:
 *
 * - `POST /api/v1/browser/enroll` (public, rate-limited together with /enroll): body
 *   `browserEnrollRequest`, 201 `browserEnrollResponse`. The token is an enrollment token; an API
 *   token is refused with 403 (pass it as `load({token})` and the enrollment token as
 *   `report.enrollToken`).
 * - `POST /api/v1/devices/{id}/stats` (device bearer = the secret; only for its own id, else 403):
 *   body `statsMessage` (as on MQTT `devices/{id}/stats`; seq dedupes), 200 `statsIngestResponse`.
 * - `PUT /api/v1/devices/{id}/reported` (device bearer, own id only): body `reportedState` (as on
 *   MQTT `devices/{id}/reported`): what the browser runs, and which runtimes it has and why not.
 *   200 `{ok: true}`; the device shows as online.
 */
import { z } from 'zod';
import { deviceFacts, trustedKey } from './api.ts';

export const browserProfiles = ['browser-webgpu', 'browser-wasm'] as const;
export type BrowserProfile = (typeof browserProfiles)[number];

/** What the SDK knows about the browser; `accelerators` lists `webgpu` and adapter features such as `shader-f16`. */
export const browserFacts = deviceFacts.extend({
  platform: z.literal('browser'),
  userAgent: z.string().max(512),
  webgpu: z.object({
    available: z.boolean(),
    reason: z.string().max(500).optional(),
    features: z.array(z.string().max(64)).max(64),
    adapter: z
      .object({
        vendor: z.string().max(128),
        architecture: z.string().max(128),
        description: z.string().max(256),
        isFallbackAdapter: z.boolean(),
      })
      .optional(),
  }),
  crossOriginIsolated: z.boolean().optional(),
});
export type BrowserFacts = z.infer<typeof browserFacts>;

export const browserEnrollRequest = z
  .object({
    token: z.string().min(10).max(200),
    name: z.string().min(1).max(128).optional(),
    profile: z.enum(browserProfiles),
    facts: browserFacts,
  })
  .strict();
export type BrowserEnrollRequest = z.infer<typeof browserEnrollRequest>;

export const browserEnrollResponse = z.object({
  deviceId: z.string().min(1).max(64),
  name: z.string(),
  /** The device's bearer token for its own routes. Shown once; the SDK keeps it in localStorage. */
  secret: z.string().min(1),
  trustedKeys: z.array(trustedKey),
  profile: z.string().nullable(),
  /** How often the hub wants a stats window from this browser. */
  statsWindowMs: z.number().int().min(1000).max(86_400_000).optional(),
});
export type BrowserEnrollResponse = z.infer<typeof browserEnrollResponse>;

export const statsIngestResponse = z.object({
  accepted: z.number().int().nonnegative(),
  duplicates: z.number().int().nonnegative(),
});
export type StatsIngestResponse = z.infer<typeof statsIngestResponse>;

/** Paths under API_PREFIX for the routes above. */
export const browserRoutes = {
  enroll: '/browser/enroll',
  stats: (deviceId: string) => `/devices/${encodeURIComponent(deviceId)}/stats`,
  reported: (deviceId: string) => `/devices/${encodeURIComponent(deviceId)}/reported`,
};
