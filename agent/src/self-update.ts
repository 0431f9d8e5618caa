/**
 * Agent self-update: releases of the agent itself (the directory `edgefleet flash` builds, packed
 * as a .tar.gz with a signed release manifest) staged under STATE/releases and switched by
 * symlinks. A new release starts on probation (`pending`); the launcher (launch.sh, installed once
 * and never replaced by an update) counts its starts and reverts to `previous` when it keeps
 * crashing; the running agent confirms it once it has served for a while.
 *
 *   STATE/releases/<version>/   one release each
 *   STATE/releases/current      -> <version>     (absent: the factory release in /opt/edgefleet)
 *   STATE/releases/previous     -> <version>     (what a revert goes back to)
 *   STATE/releases/pending      version on probation; `starts` counts its launches
 *   STATE/releases/failed       versions reverted, one a line; never staged again
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type SignatureFile, verifyManifestSignature } from '@edgefleet/bundle';
import {
  type AgentReleaseManifest,
  agentReleaseManifest,
  EdgefleetError,
  parseMessage,
  type TrustedKey,
} from '@edgefleet/protocol';

const run = promisify(execFile);

export type UpdateErrorCode = 'UPDATE_INVALID' | 'UPDATE_REFUSED';

/** A release that does not verify, or one this device must not take. */
export class UpdateError extends EdgefleetError {
  declare readonly code: UpdateErrorCode;
  constructor(code: UpdateErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = 'UpdateError';
  }
}

export interface ReleaseState {
  current: string | null;
  previous: string | null;
  pending: string | null;
  starts: number;
  failed: string[];
}

const link = async (path: string) => readlink(path).catch(() => null);
const text = async (path: string) => (await readFile(path, 'utf8').catch(() => '')).trim();

/** Where releases live for an agent state directory. */
export const releasesDirOf = (stateDir: string) => join(stateDir, 'releases');

/** What is installed, on probation and refused. */
export async function releaseState(releasesDir: string): Promise<ReleaseState> {
  return {
    current: await link(join(releasesDir, 'current')),
    previous: await link(join(releasesDir, 'previous')),
    pending: (await text(join(releasesDir, 'pending'))) || null,
    starts: Number(await text(join(releasesDir, 'starts'))) || 0,
    failed: (await text(join(releasesDir, 'failed'))).split('\n').filter((l) => l.length > 0),
  };
}

/** Point `name` at `target` atomically (a new symlink renamed over the old one). */
async function pointAt(releasesDir: string, name: string, target: string): Promise<void> {
  const tmp = join(releasesDir, `.${name}.tmp`);
  await rm(tmp, { force: true });
  await symlink(target, tmp);
  await rename(tmp, join(releasesDir, name));
}

export interface StageOptions {
  releasesDir: string;
  /** The release archive (`edgefleet-agent-<v>-linux-<arch>.tar.gz`), e.g. where it was downloaded. */
  archivePath: string;
  manifestBytes: Uint8Array;
  signature: SignatureFile | undefined;
  trustedKeys: readonly TrustedKey[];
  /** This machine's arch (`process.arch`). */
  arch?: string;
}

/**
 * Check a release before fetching it: a trusted signature over its manifest, a manifest of the
 * right form, this machine's arch, and not a version that crashed here before.
 */
export async function verifyRelease(o: Omit<StageOptions, 'archivePath'>): Promise<AgentReleaseManifest> {
  await verifyManifestSignature(o.manifestBytes, o.signature, o.trustedKeys).catch((cause: Error) => {
    throw new UpdateError('UPDATE_INVALID', `release signature: ${cause.message}`, { cause });
  });
  let m: AgentReleaseManifest;
  try {
    m = parseMessage(agentReleaseManifest, o.manifestBytes, 'release manifest');
  } catch (cause) {
    throw new UpdateError('UPDATE_INVALID', (cause as Error).message, { cause });
  }
  const arch = o.arch ?? process.arch;
  if (m.arch !== arch)
    throw new UpdateError('UPDATE_REFUSED', `release is for ${m.arch}, this device is ${arch}`);
  if ((await releaseState(o.releasesDir)).failed.includes(m.version))
    throw new UpdateError('UPDATE_REFUSED', `release ${m.version} crashed here before and was reverted`);
  return m;
}

async function sha256OfFile(path: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).byteLength;
  }
  return { sha256: hash.digest('hex'), size };
}

/**
 * Verify a release (verifyRelease, then the archive's digest), unpack it beside the others and
 * switch `current` to it on probation. The caller then exits so the service manager restarts the
 * agent into the new release.
 */
export async function stageRelease(o: StageOptions): Promise<AgentReleaseManifest> {
  const m = await verifyRelease(o);
  const digest = await sha256OfFile(o.archivePath);
  if (digest.sha256 !== m.sha256 || digest.size !== m.size_bytes)
    throw new UpdateError(
      'UPDATE_INVALID',
      `release archive digest ${digest.sha256} does not match the manifest`,
    );
  const state = await releaseState(o.releasesDir);
  if (state.pending)
    throw new UpdateError('UPDATE_REFUSED', `release ${state.pending} is still on probation`);

  await mkdir(o.releasesDir, { recursive: true });
  const partial = join(o.releasesDir, `.${m.version}.partial`);
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { recursive: true });
  try {
    // The archive holds one top-level directory (edgefleet-agent-<version>-linux-<arch>/release/…).
    await run('tar', [
      '-xzf',
      o.archivePath,
      '-C',
      partial,
      '--strip-components=2',
      '--wildcards',
      '*/release/*',
    ]);
  } catch (cause) {
    await rm(partial, { recursive: true, force: true });
    throw new UpdateError('UPDATE_INVALID', 'release archive does not unpack', { cause });
  }
  const info = JSON.parse((await text(join(partial, 'release.json'))) || '{}') as {
    version?: string;
    arch?: string;
  };
  if (info.version !== m.version || info.arch !== m.arch || !existsSync(join(partial, 'bin/node'))) {
    await rm(partial, { recursive: true, force: true });
    throw new UpdateError('UPDATE_INVALID', 'release archive content does not match its manifest');
  }
  const dir = join(o.releasesDir, m.version);
  await rm(dir, { recursive: true, force: true });
  await rename(partial, dir);
  if (state.current && state.current !== m.version) await pointAt(o.releasesDir, 'previous', state.current);
  await writeFile(join(o.releasesDir, 'starts'), '0\n');
  await writeFile(join(o.releasesDir, 'pending'), `${m.version}\n`);
  await pointAt(o.releasesDir, 'current', m.version);
  return m;
}

/** End probation for the running release and prune releases that are neither current nor previous. */
export async function confirmRelease(releasesDir: string): Promise<string | null> {
  const state = await releaseState(releasesDir);
  if (!state.pending) return null;
  await rm(join(releasesDir, 'pending'), { force: true });
  await rm(join(releasesDir, 'starts'), { force: true });
  const keep = new Set([state.current, state.previous, 'current', 'previous', 'pending', 'starts', 'failed']);
  for (const name of await readdir(releasesDir)) {
    if (!keep.has(name) && !name.startsWith('.'))
      await rm(join(releasesDir, name), { recursive: true, force: true });
  }
  return state.pending;
}

/**
 * Confirm the running release once it has served for `afterMs` and `healthy()` says so (checked
 * again every `afterMs` until it does). Returns a function that cancels.
 */
export function confirmWhenHealthy(o: {
  releasesDir: string;
  afterMs: number;
  healthy: () => Promise<boolean>;
  onConfirmed?: (version: string) => void;
}): () => void {
  let timer: NodeJS.Timeout | undefined;
  const attempt = async () => {
    if ((await o.healthy().catch(() => false)) === true) {
      const version = await confirmRelease(o.releasesDir);
      if (version) o.onConfirmed?.(version);
      return;
    }
    timer = setTimeout(attempt, o.afterMs);
    timer.unref();
  };
  timer = setTimeout(attempt, o.afterMs);
  timer.unref();
  return () => clearTimeout(timer);
}
