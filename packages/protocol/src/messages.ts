/**
 * MQTT payload schemas. Every payload is JSON and validated on receipt with `parseMessage`;
 * a bad one becomes a `ValidationError`, never a crash. Units live in field names.
 */
import { z } from 'zod';
import { desiredAgent, reportedAgentUpdate } from './agent-release.ts';
import { ValidationError } from './errors.ts';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256');
const isoTime = z.string().datetime({ offset: true });
const name = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, . _ - only');
const semver = z
  .string()
  .regex(
    /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/,
    'expected a semantic version like 1.2.0',
  );
/** A device tag: a word, or `key:value` such as `site:berlin` (sites drive disruption budgets). */
const tag = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'letters, digits, . _ - : only');
export const schemas = { sha256, isoTime, name, semver, tag };

/** `devices/{id}/status`, retained; the Last Will publishes `state: "offline"`. */
export const statusMessage = z.object({
  state: z.enum(['online', 'offline']),
  agentVersion: z.string().max(64),
  ts: isoTime,
});
export type StatusMessage = z.infer<typeof statusMessage>;

/** One artifact the hub chose for a device out of a model version's bundle. */
export const artifactRef = z.object({
  sha256,
  size_bytes: z.number().int().nonnegative(),
  target: z.string().min(1).max(32),
  runtime: z.string().min(1).max(32),
  precision: z.string().min(1).max(32),
  file: z.string().min(1).max(256),
});
export type ArtifactRef = z.infer<typeof artifactRef>;

/** What one model slot on a device should run. */
const desiredModelBase = z.object({
  name,
  version: semver,
  deploymentId: z.string().min(1).max(64),
  artifact: artifactRef,
  /** Set by a fleet rollback: allows a version lower than the installed one, if the device had it before. */
  rollback: z.boolean().optional(),
  /**
   * The signed manifest (base64 of manifest.json) and its signature, so a device needs no HTTP
   * round trip, and a device that reaches only the broker can verify what it receives.
   */
  manifest: z.string().max(1_000_000).optional(),
  signature: z.unknown().optional(),
});

export const desiredModel = desiredModelBase.extend({
  /**
   * Shadow mode: run this candidate beside the active model on real traffic, without serving its
   * answers, and report agreement and latency.
   */
  shadow: desiredModelBase.optional(),
});
export type DesiredModel = z.infer<typeof desiredModel>;

/** `devices/{id}/desired`, retained, hub→device: the whole declarative state, not a command. */
export const desiredState = z.object({
  revision: z.number().int().nonnegative(),
  issuedAt: isoTime,
  models: z.record(name, desiredModel),
  config: z
    .object({
      telemetryIntervalMs: z.number().int().min(1000).max(86_400_000).optional(),
      statsWindowMs: z.number().int().min(1000).max(86_400_000).optional(),
    })
    .strict()
    .default({}),
  /** The agent release to run (self-update); absent leaves the agent as it is. */
  agent: desiredAgent.optional(),
});
export type DesiredState = z.infer<typeof desiredState>;

export const deploymentStates = [
  'pending',
  'downloading',
  'verifying',
  'staged',
  'loading',
  'smoke-testing',
  'active',
  'failed',
  'rolled-back',
] as const;
export type DeploymentStateName = (typeof deploymentStates)[number];

const installedModel = z.object({
  name,
  version: semver,
  sha256,
  target: z.string(),
  runtime: z.string(),
  since: isoTime,
});
export type InstalledModel = z.infer<typeof installedModel>;

export const errorInfo = z.object({ code: z.string().max(64), message: z.string().max(2000) });
export type ErrorInfo = z.infer<typeof errorInfo>;

/** Per-slot state the device reports: what runs, what ran before, and the deployment in progress. */
export const reportedSlot = z.object({
  active: installedModel.nullable(),
  previous: installedModel.nullable(),
  deployment: z
    .object({
      deploymentId: z.string(),
      name,
      version: semver,
      state: z.enum(deploymentStates),
      progress: z.object({ bytes: z.number().nonnegative(), total: z.number().nonnegative() }).optional(),
      error: errorInfo.optional(),
      updatedAt: isoTime,
    })
    .nullable(),
  /** A candidate running in shadow mode beside the active model. */
  shadow: z
    .object({
      name,
      version: semver,
      state: z.enum(['installing', 'running', 'failed']),
      error: errorInfo.optional(),
    })
    .nullable()
    .optional(),
});
export type ReportedSlot = z.infer<typeof reportedSlot>;

/** `devices/{id}/reported`, retained, device→hub. */
export const reportedState = z.object({
  desiredRevision: z.number().int().nonnegative().nullable(),
  ts: isoTime,
  agentVersion: z.string().max(64),
  profile: z.string().max(64).nullable(),
  models: z.record(name, reportedSlot),
  runtimes: z
    .array(z.object({ name: z.string(), available: z.boolean(), reason: z.string().optional() }))
    .default([]),
  /**
   * Blobs the device is receiving over MQTT (`chunks/{sha256}`), with the offset it has: the hub
   * streams from there, so a dropped connection resumes where it broke.
   */
  transfers: z
    .array(z.object({ sha256, offset: z.number().int().nonnegative(), size: z.number().int().nonnegative() }))
    .max(8)
    .default([]),
  /** Progress towards `desired.agent`; null when none is desired. */
  agentUpdate: reportedAgentUpdate.nullable().optional(),
});
export type ReportedState = z.infer<typeof reportedState>;

/** A chunk on `chunks/{sha256}`: 8 bytes big-endian offset, then the bytes at that offset. */
export function encodeChunk(offset: number, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + data.byteLength);
  new DataView(out.buffer).setBigUint64(0, BigInt(offset));
  out.set(data, 8);
  return out;
}

export function decodeChunk(payload: Uint8Array): { offset: number; data: Uint8Array } | undefined {
  if (payload.byteLength < 8) return undefined;
  const offset = Number(new DataView(payload.buffer, payload.byteOffset, 8).getBigUint64(0));
  return { offset, data: payload.subarray(8) };
}

/** One health sample. `seq` is per device and strictly increasing; the hub stores each seq once. */
export const telemetrySample = z.object({
  seq: z.number().int().nonnegative().max(2_147_483_647), // stored as a 32-bit integer
  ts: isoTime,
  cpu_load_pct: z.number().min(0).max(100_000),
  mem_used_mb: z.number().nonnegative(),
  mem_total_mb: z.number().nonnegative(),
  rss_mb: z.number().nonnegative(),
  disk_free_mb: z.number().nonnegative(),
  disk_total_mb: z.number().nonnegative(),
  temp_c: z.number().min(-100).max(200).nullable(),
  uptime_s: z.number().nonnegative(),
  inference: z
    .object({
      requests: z.number().int().nonnegative(),
      errors: z.number().int().nonnegative(),
      latency_p50_ms: z.number().nonnegative().nullable(),
      latency_p95_ms: z.number().nonnegative().nullable(),
    })
    .optional(),
  notes: z.array(z.string().max(200)).max(20).optional(),
  /** Shadow comparisons since the previous sample, per model slot. */
  shadow: z
    .array(
      z.object({
        model: name,
        candidate_version: semver,
        compared: z.number().int().nonnegative(),
        agreed: z.number().int().nonnegative(),
        latency_delta_ms: z.number().nullable(),
      }),
    )
    .max(16)
    .optional(),
});
export type TelemetrySample = z.infer<typeof telemetrySample>;

/** `devices/{id}/telemetry`: a batch, so an outbox replay after an outage is a few messages, not thousands. */
export const telemetryMessage = z.object({ samples: z.array(telemetrySample).min(1).max(1000) });
export type TelemetryMessage = z.infer<typeof telemetryMessage>;

/** One prediction-statistics window; `window` is validated by @edgefleet/drift's schema. */
export const statsWindowEnvelope = z.object({
  seq: z.number().int().nonnegative().max(2_147_483_647), // stored as a 32-bit integer
  model: name,
  version: semver,
  start: isoTime,
  end: isoTime,
  window: z.unknown(),
});
export type StatsWindowEnvelope = z.infer<typeof statsWindowEnvelope>;

/** `devices/{id}/stats`. */
export const statsMessage = z.object({ windows: z.array(statsWindowEnvelope).min(1).max(1000) });
export type StatsMessage = z.infer<typeof statsMessage>;

/** `devices/{id}/cmd/{name}`: a remote command with a correlation id. */
export const commandRequest = z.object({
  id: z.string().min(1).max(64),
  args: z.record(z.string(), z.unknown()).default({}),
});
export type CommandRequest = z.infer<typeof commandRequest>;

/** `devices/{id}/cmd/{name}/reply`: the `ok | error` envelope, carrying the same id. */
export const commandReply = z.discriminatedUnion('ok', [
  z.object({ id: z.string(), ok: z.literal(true), result: z.unknown() }),
  z.object({ id: z.string(), ok: z.literal(false), error: errorInfo }),
]);
export type CommandReply = z.infer<typeof commandReply>;

/** Turn zod issues into our ValidationError (paths as `a.b[0].c`). */
export function toValidationError(error: z.ZodError, context: string): ValidationError {
  return new ValidationError(
    error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
    context,
  );
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** Decode and validate one MQTT payload. Throws ValidationError on bad JSON or a schema mismatch. */
export function parseMessage<T extends z.ZodType>(
  schema: T,
  payload: Uint8Array | string,
  context: string,
): z.infer<T> {
  let value: unknown;
  try {
    value = JSON.parse(
      typeof payload === 'string' ? payload : new TextDecoder('utf-8', { fatal: true }).decode(payload),
    );
  } catch {
    throw new ValidationError([{ path: '', message: 'payload is not valid UTF-8 JSON' }], context);
  }
  const result = schema.safeParse(value);
  if (!result.success) throw toValidationError(result.error, context);
  return result.data;
}

/** Encode a payload the way every component does. */
export function encodeMessage(value: unknown): string {
  return JSON.stringify(value);
}
