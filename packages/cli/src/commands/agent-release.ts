/**
 * `edgefleet agent-release`: agent self-update from the operator's side. Publish the archive
 * `edgefleet flash --key` built (with its signed release manifest), list releases, deploy one to
 * devices, and follow how the devices are getting on.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import {
  type AgentReleaseManifest,
  agentReleaseManifest,
  parseMessage,
  type ReportedAgentUpdate,
} from '@edgefleet/protocol';
import { type Command, type CommandContext, optionalString, UsageError } from '../command.ts';
import { type HubClient, hubClient, hubOptions, requireTarget } from '../hub-client.ts';
import { formatAge, formatBytes, formatTable } from '../table.ts';

interface ReleaseView {
  version: string;
  arch: string;
  sha256: string;
  sizeBytes: number;
  createdAt: string;
  createdBy?: string | null;
}

interface DeploymentView {
  deploymentId: string;
  devices: { deviceId: string; name: string; arch: string; state: 'assigned' | 'skipped'; reason?: string }[];
}

interface StatusView {
  version: string;
  releases: ReleaseView[];
  devices: {
    deviceId: string;
    name: string;
    arch: string;
    deploymentId: string | null;
    runningVersion: string | null;
    update: ReportedAgentUpdate | null;
  }[];
}

const SIGN_HINT = 'sign it: edgefleet flash … --key KEY writes it beside the archive';

/** `X.tar.gz` → `X.release-manifest.json`, as `edgefleet flash --key` names it. */
export function defaultManifestPath(archive: string): string | undefined {
  return archive.endsWith('.tar.gz')
    ? `${archive.slice(0, -'.tar.gz'.length)}.release-manifest.json`
    : undefined;
}

async function readCompanion(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UsageError(`no ${what} at ${path} (${SIGN_HINT}, or pass --${what.split(' ')[0]} FILE)`);
    throw error;
  }
}

/** The manifest read locally first: version and arch name the URL, and a bad file fails here. */
function parseManifestFile(path: string, bytes: Buffer): AgentReleaseManifest {
  try {
    return parseMessage(agentReleaseManifest, bytes, 'release manifest');
  } catch (error) {
    throw new UsageError(`${path}: ${(error as Error).message} (${SIGN_HINT})`);
  }
}

async function publish(ctx: CommandContext, client: HubClient, archive: string | undefined): Promise<number> {
  if (!archive)
    throw new UsageError('publish needs the archive (edgefleet-agent-<version>-linux-<arch>.tar.gz)');
  const manifestPath = optionalString(ctx, 'manifest') ?? defaultManifestPath(archive);
  if (!manifestPath)
    throw new UsageError(`${archive} does not end in .tar.gz: pass --manifest FILE and --signature FILE`);
  const signaturePath = optionalString(ctx, 'signature') ?? `${manifestPath}.sig`;
  const manifestBytes = await readCompanion(manifestPath, 'manifest file');
  const signatureBytes = await readCompanion(signaturePath, 'signature file');
  const manifest = parseManifestFile(manifestPath, manifestBytes);
  const bytes = await readFile(archive);
  ctx.progress(`uploading ${basename(archive)} (${formatBytes(bytes.byteLength)})…`);
  const release = await client.request<ReleaseView>(
    'PUT',
    `/agent-releases/${encodeURIComponent(manifest.version)}/${encodeURIComponent(manifest.arch)}`,
    undefined,
    {
      rawBody: bytes,
      headers: {
        'content-type': 'application/octet-stream',
        'X-Edgefleet-Release-Manifest': manifestBytes.toString('base64'),
        'X-Edgefleet-Release-Signature': signatureBytes.toString('base64'),
      },
    },
  );
  ctx.progress('');
  ctx.printJson(release);
  ctx.print(
    `published agent ${release.version} for ${release.arch} (${formatBytes(release.sizeBytes)}, sha256 ${release.sha256.slice(0, 12)})`,
  );
  if (!ctx.json)
    process.stderr.write(
      `deploy it with: edgefleet agent-release deploy ${release.version} --to all|tag:T|device:ID|profile:P\n`,
    );
  return 0;
}

async function list(ctx: CommandContext, client: HubClient): Promise<number> {
  const { releases } = await client.request<{ releases: ReleaseView[] }>('GET', '/agent-releases');
  ctx.printJson(releases);
  if (releases.length === 0) {
    ctx.print('no agent releases yet: publish one with `edgefleet agent-release publish ARCHIVE.tar.gz`');
    return 0;
  }
  ctx.print(
    formatTable(releases, [
      { header: 'VERSION', value: (r) => r.version },
      { header: 'ARCH', value: (r) => r.arch },
      { header: 'SIZE', value: (r) => formatBytes(r.sizeBytes), align: 'right' },
      { header: 'SHA256', value: (r) => r.sha256.slice(0, 12) },
      { header: 'PUBLISHED', value: (r) => formatAge(r.createdAt) },
    ]),
  );
  return 0;
}

async function deploy(ctx: CommandContext, client: HubClient, version: string | undefined): Promise<number> {
  if (!version) throw new UsageError('deploy needs the agent version');
  const target = requireTarget(ctx);
  const deployment = await client.request<DeploymentView>(
    'POST',
    `/agent-releases/${encodeURIComponent(version)}/deploy`,
    { target },
  );
  ctx.printJson(deployment);
  const assigned = deployment.devices.filter((d) => d.state === 'assigned').length;
  ctx.print(
    `${deployment.deploymentId}: agent ${version} assigned to ${assigned} device(s), ${deployment.devices.length - assigned} skipped`,
  );
  if (deployment.devices.length > 0) {
    ctx.print();
    ctx.print(
      formatTable(deployment.devices, [
        { header: 'NAME', value: (d) => d.name },
        { header: 'ID', value: (d) => d.deviceId },
        { header: 'ARCH', value: (d) => d.arch },
        { header: 'STATE', value: (d) => d.state },
        { header: 'REASON', value: (d) => d.reason },
      ]),
    );
  }
  if (!ctx.json) process.stderr.write(`follow it with: edgefleet agent-release status ${version}\n`);
  return 0;
}

function progressText(u: ReportedAgentUpdate | null): string | undefined {
  if (!u?.progress || u.progress.total === 0) return undefined;
  return `${Math.floor((u.progress.bytes / u.progress.total) * 100)}%`;
}

async function status(ctx: CommandContext, client: HubClient, version: string | undefined): Promise<number> {
  if (!version) throw new UsageError('status needs the agent version');
  const view = await client.request<StatusView>('GET', `/agent-releases/${encodeURIComponent(version)}`);
  ctx.printJson(view);
  ctx.print(`agent ${view.version} for ${view.releases.map((r) => r.arch).join(', ')}`);
  if (view.devices.length === 0) {
    ctx.print(`no device is assigned ${version}: edgefleet agent-release deploy ${version} --to …`);
    return 0;
  }
  ctx.print();
  ctx.print(
    formatTable(view.devices, [
      { header: 'NAME', value: (d) => d.name },
      { header: 'ID', value: (d) => d.deviceId },
      { header: 'ARCH', value: (d) => d.arch },
      { header: 'RUNNING', value: (d) => d.runningVersion },
      // The device's report may still be about an earlier deployment: show only this one's.
      {
        header: 'UPDATE',
        value: (d) => (d.update?.deploymentId === d.deploymentId ? d.update?.state : 'pending'),
      },
      { header: 'PROGRESS', value: (d) => progressText(d.update), align: 'right' },
      { header: 'UPDATED', value: (d) => formatAge(d.update?.updatedAt) },
      { header: 'ERROR', value: (d) => d.update?.error?.message },
    ]),
  );
  return 0;
}

export const agentReleaseCommand: Command = {
  name: 'agent-release',
  summary: 'Agent self-update: publish a signed agent archive, list releases, deploy one, follow it',
  usage:
    'agent-release publish ARCHIVE.tar.gz [--manifest FILE] [--signature FILE] | agent-release list | agent-release deploy VERSION --to all|tag:T|device:ID|profile:P | agent-release status VERSION',
  options: {
    ...hubOptions(),
    manifest: { type: 'string' },
    signature: { type: 'string' },
    to: { type: 'string' },
  },
  async run(ctx) {
    const [sub, arg] = ctx.positionals;
    if (sub === 'publish') return publish(ctx, hubClient(ctx), arg);
    if (sub === 'list') return list(ctx, hubClient(ctx));
    if (sub === 'deploy') return deploy(ctx, hubClient(ctx), arg);
    if (sub === 'status') return status(ctx, hubClient(ctx), arg);
    throw new UsageError(
      sub
        ? `unknown subcommand "${sub}": use publish, list, deploy or status`
        : 'which one: publish, list, deploy or status?',
    );
  },
};
