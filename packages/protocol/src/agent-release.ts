/**
 * Agent self-update: a release of the agent itself (the archive `edgefleet flash` builds) is
 * published to the hub with a signed release manifest and deployed through the desired state.
 * The device verifies the signature, stages the release and restarts into it on probation; the
 * launcher reverts it if it keeps crashing (docs/self-update.md).
 */
import { z } from 'zod';

const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256');
const releaseVersion = z
  .string()
  .max(64)
  .regex(/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/, 'expected a version like 0.2.0 or 0.2.0-rc.1');
export const agentArchs = ['arm64', 'x64'] as const;
export type AgentArch = (typeof agentArchs)[number];

/** `edgefleet-agent-<v>-linux-<arch>.release-manifest.json`: what is signed. */
export const agentReleaseManifest = z
  .object({
    format: z.literal('edgefleet-agent-release'),
    version: releaseVersion,
    arch: z.enum(agentArchs),
    sha256,
    size_bytes: z.number().int().positive(),
  })
  .strict();
export type AgentReleaseManifest = z.infer<typeof agentReleaseManifest>;

/** `desired.agent`: the agent release a device should run (absent: whatever it runs now). */
export const desiredAgent = z.object({
  version: releaseVersion,
  deploymentId: z.string().min(1).max(64),
  artifact: z.object({ sha256, size_bytes: z.number().int().positive() }),
  /** The release manifest (base64 of its bytes) and its signature, verified on the device. */
  manifest: z.string().max(100_000),
  signature: z.unknown(),
});
export type DesiredAgent = z.infer<typeof desiredAgent>;

export const agentUpdateStates = ['downloading', 'staged', 'active', 'failed', 'rolled-back'] as const;
export type AgentUpdateState = (typeof agentUpdateStates)[number];

/** `reported.agentUpdate`: how the device is getting on with `desired.agent`. */
export const reportedAgentUpdate = z.object({
  deploymentId: z.string().max(64),
  version: z.string().max(64),
  state: z.enum(agentUpdateStates),
  progress: z.object({ bytes: z.number().nonnegative(), total: z.number().nonnegative() }).optional(),
  error: z.object({ code: z.string().max(64), message: z.string().max(2000) }).optional(),
  updatedAt: z.string().datetime({ offset: true }),
});
export type ReportedAgentUpdate = z.infer<typeof reportedAgentUpdate>;
