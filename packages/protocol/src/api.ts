/** Shapes shared by the hub's HTTP API and its clients (CLI, agent, browser SDK, dashboard). */
import { z } from 'zod';
import { schemas } from './messages.ts';

export const API_PREFIX = '/api/v1';

/** Bearer-token roles, most to least privileged. `device` tokens belong to one enrolled device. */
export const roles = ['admin', 'operator', 'viewer', 'device'] as const;
export type Role = (typeof roles)[number];

/** What each role may do; routes declare the permission they need. */
export type Permission = 'admin' | 'write' | 'read' | 'device';
export const rolePermissions: Record<Role, readonly Permission[]> = {
  admin: ['admin', 'write', 'read'],
  operator: ['write', 'read'],
  viewer: ['read'],
  device: ['device'],
};

/** A trusted ed25519 public key (raw 32 bytes, base64), as pinned by agents at enrollment. */
export const trustedKey = z.object({
  keyId: z.string().min(1).max(64),
  publicKey: z.string().min(40).max(64),
});
export type TrustedKey = z.infer<typeof trustedKey>;

/** Facts the agent reports about itself at enrollment. */
export const deviceFacts = z.object({
  arch: z.string().max(32),
  platform: z.string().max(32),
  hostname: z.string().max(255).optional(),
  model: z.string().max(255).optional(),
  memTotalMb: z.number().nonnegative().optional(),
  cpuCores: z.number().int().nonnegative().optional(),
  accelerators: z.array(z.string().max(64)).max(16).default([]),
  agentVersion: z.string().max(64).optional(),
});
export type DeviceFacts = z.infer<typeof deviceFacts>;

export const enrollRequest = z.object({
  token: z.string().min(10).max(200),
  name: z.string().min(1).max(128).optional(),
  profile: z.string().max(64).optional(),
  facts: deviceFacts,
});
export type EnrollRequest = z.infer<typeof enrollRequest>;

export const enrollResponse = z.object({
  deviceId: z.string(),
  name: z.string(),
  /** One secret per device: the MQTT password and the HTTP bearer token. Shown once. */
  secret: z.string(),
  mqtt: z.object({ url: z.string(), username: z.string() }),
  trustedKeys: z.array(trustedKey),
  profile: z.string().nullable(),
});
export type EnrollResponse = z.infer<typeof enrollResponse>;

export const createEnrollmentTokenRequest = z
  .object({
    uses: z.number().int().min(1).max(100_000).default(1),
    tags: z.array(schemas.tag).max(32).default([]),
    expiresInHours: z
      .number()
      .min(0.01)
      .max(24 * 365)
      .default(24 * 7),
  })
  .strict();

export const createApiTokenRequest = z
  .object({ role: z.enum(['admin', 'operator', 'viewer']), name: z.string().min(1).max(128) })
  .strict();

/** Which devices a deployment targets. */
export const targetSelector = z.union([
  z.object({ all: z.literal(true) }).strict(),
  z.object({ tags: z.array(schemas.tag).min(1) }).strict(),
  z.object({ devices: z.array(z.string().min(1)).min(1) }).strict(),
  z.object({ profile: z.string().min(1) }).strict(),
]);
export type TargetSelector = z.infer<typeof targetSelector>;

/** Parse the CLI's `--to all|tag:T|device:ID|profile:P` (comma-separated values allowed). */
export function parseTargetSelector(text: string): TargetSelector {
  if (text === 'all') return { all: true };
  const [kind, rest] = [text.slice(0, text.indexOf(':')), text.slice(text.indexOf(':') + 1)];
  const values = rest.split(',').filter((v) => v.length > 0);
  if (text.includes(':') && values.length > 0) {
    if (kind === 'tag') return { tags: values };
    if (kind === 'device') return { devices: values };
    if (kind === 'profile' && values[0]) return { profile: values[0] };
  }
  throw new Error(`invalid target "${text}": use all, tag:NAME, device:ID or profile:ID`);
}

/** The JSON error body of every failed API call. */
export interface ApiErrorBody {
  error: { code: string; message: string; field?: string };
}
