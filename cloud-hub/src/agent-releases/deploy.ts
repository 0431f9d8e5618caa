/**
 * Deploying an agent release: each selected device gets `desired.agent` naming the archive for its
 * architecture (from its enrollment facts). A device with no release for its arch is reported as
 * skipped with the reason, never dropped silently. No batches or gates: the device's launcher
 * reverts a release that keeps crashing (docs/self-update.md).
 */
import type { DesiredAgent, TargetSelector } from '@edgefleet/protocol';
import { newId } from '../auth/secrets.ts';
import type { HubContext } from '../context.ts';
import { notFound } from '../errors.ts';
import { setDesiredAgent } from '../rollouts/desired.ts';
import { selectDevices } from '../rollouts/targets.ts';
import type { AgentReleaseRecord } from '../store/agent-releases.ts';

export interface AgentDeploymentDevice {
  deviceId: string;
  name: string;
  arch: string;
  state: 'assigned' | 'skipped';
  reason?: string;
}

export interface AgentDeployment {
  deploymentId: string;
  version: string;
  devices: AgentDeploymentDevice[];
}

/** `desired.agent` for one release: the manifest bytes as signed, and the signature as JSON. */
export function desiredAgentEntry(release: AgentReleaseRecord, deploymentId: string): DesiredAgent {
  return {
    version: release.version,
    deploymentId,
    artifact: { sha256: release.sha256, size_bytes: release.sizeBytes },
    manifest: Buffer.from(release.manifestText, 'utf8').toString('base64'),
    signature: JSON.parse(release.signatureText) as unknown,
  };
}

export async function deployAgentRelease(
  ctx: HubContext,
  input: { version: string; target: TargetSelector; actor: string | null },
): Promise<AgentDeployment> {
  const releases = await ctx.store.agentReleases.listVersion(input.version);
  if (releases.length === 0) throw notFound(`agent release ${input.version}`);
  const byArch = new Map(releases.map((r) => [r.arch, r]));
  const deploymentId = newId('agt');
  const devices: AgentDeploymentDevice[] = [];
  for (const device of selectDevices(await ctx.store.devices.list(), input.target)) {
    const arch = device.facts.arch;
    const release = byArch.get(arch);
    const base = { deviceId: device.id, name: device.name, arch };
    if (!release) {
      devices.push({ ...base, state: 'skipped', reason: `no ${input.version} release for ${arch}` });
      continue;
    }
    const written = await setDesiredAgent(ctx, device.id, desiredAgentEntry(release, deploymentId));
    // Revoked or deleted between the listing and the write.
    if (written) {
      devices.push({ ...base, state: 'assigned' });
      ctx.live.emit({ type: 'device', deviceId: device.id });
    } else devices.push({ ...base, state: 'skipped', reason: 'device no longer exists' });
  }
  const assigned = devices.filter((d) => d.state === 'assigned').length;
  await ctx.store.events.add({
    kind: 'agent-release.deployed',
    subject: deploymentId,
    actor: input.actor,
    message: `agent ${input.version}: ${assigned} device(s) assigned, ${devices.length - assigned} skipped`,
    data: { version: input.version, target: input.target, devices },
  });
  return { deploymentId, version: input.version, devices };
}
