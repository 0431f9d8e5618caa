/**
 * Following desired.agent on the device: a signed release is fetched, staged and restarted into;
 * everything else (not a flashed install, an untrusted or mismatched manifest, a release that
 * crashed here before, a dropped download) gets a reported state and leaves the agent as it is.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateSigningKey, publicKeyOf, type SigningKeyFile, signManifest } from '@edgefleet/bundle';
import type { DesiredAgent, ReportedAgentUpdate } from '@edgefleet/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crashingRelease, releaseManifestFor } from '../../test/support/agent-release.ts';
import { AgentUpdater } from '../src/agent-updater.ts';
import { AgentError } from '../src/errors.ts';
import { releaseState } from '../src/self-update.ts';
import { quiet } from './fixtures.ts';

const _run = promisify(execFile);
let dir: string;
let key: SigningKeyFile;
let archive: string;
let archiveSha: string;
let archiveSize: number;
let manifest: Uint8Array;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ef-updater-'));
  key = await generateSigningKey();
  // Staging only unpacks the archive and checks its layout: what its Node does is not run here.
  archive = await crashingRelease(join(dir, 'src'), '0.2.0');
  const bytes = await readFile(archive);
  manifest = releaseManifestFor(bytes, '0.2.0');
  archiveSha = createHash('sha256').update(bytes).digest('hex');
  archiveSize = bytes.byteLength;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function desired(overrides: Partial<{ sha256: string; signer: SigningKeyFile }> = {}) {
  const want: DesiredAgent = {
    version: '0.2.0',
    deploymentId: `agt_${Math.random().toString(36).slice(2)}`,
    artifact: { sha256: overrides.sha256 ?? archiveSha, size_bytes: archiveSize },
    manifest: Buffer.from(manifest).toString('base64'),
    signature: await signManifest(manifest, overrides.signer ?? key),
  };
  return want;
}

function updater(o: { releasesDir?: string; fetch?: (part: string) => Promise<void> } = {}) {
  const calls = { fetched: 0, restarts: [] as string[], changes: 0 };
  const dataDir = join(dir, `data-${Math.random().toString(36).slice(2)}`);
  const u = new AgentUpdater({
    dataDir,
    releasesDir: o.releasesDir,
    runningVersion: '0.1.0',
    trustedKeys: () => [publicKeyOf(key)],
    fetchBlob: async (_sha, part) => {
      calls.fetched++;
      await (o.fetch ?? ((p) => copyFile(archive, p)))(part);
    },
    logger: quiet,
    changed: () => {
      calls.changes++;
    },
    restart: async (version) => {
      calls.restarts.push(version);
    },
  });
  return { u, calls, dataDir };
}

const releasesDir = () => join(dir, `releases-${Math.random().toString(36).slice(2)}`);
const stateOf = (u: AgentUpdater) => u.reported() as ReportedAgentUpdate;

describe('agent updater', () => {
  it('fetches, stages and restarts into a signed release', async () => {
    const releases = releasesDir();
    const { u, calls, dataDir } = updater({ releasesDir: releases });
    await u.ensure(await desired());
    expect(stateOf(u)).toMatchObject({ version: '0.2.0', state: 'staged' });
    expect(calls.restarts).toEqual(['0.2.0']);
    expect(await releaseState(releases)).toMatchObject({ current: '0.2.0', pending: '0.2.0' });
    expect(existsSync(join(dataDir, 'downloads', `${archiveSha}.part`))).toBe(false);
  });

  it('reports the running release as active, and nothing when no release is desired', async () => {
    const { u, calls } = updater({ releasesDir: releasesDir() });
    await u.ensure({ ...(await desired()), version: '0.1.0' });
    expect(stateOf(u).state).toBe('active');
    await u.ensure(undefined);
    expect(u.reported()).toBeNull();
    expect(calls.fetched).toBe(0);
  });

  it('refuses to update an agent that was not installed by edgefleet flash', async () => {
    const { u, calls } = updater();
    await u.ensure(await desired());
    expect(stateOf(u)).toMatchObject({ state: 'failed', error: { code: 'UPDATE_REFUSED' } });
    expect(stateOf(u).error?.message).toMatch(/not installed by `edgefleet flash`/);
    expect(calls.fetched).toBe(0);
  });

  it('checks the signature before downloading anything', async () => {
    const { u, calls } = updater({ releasesDir: releasesDir() });
    await u.ensure(await desired({ signer: await generateSigningKey() }));
    expect(stateOf(u)).toMatchObject({ state: 'failed', error: { code: 'UPDATE_INVALID' } });
    expect(calls.fetched).toBe(0);
    // Failed for good: the same deployment is not tried again.
    await u.ensure(await desired({ signer: await generateSigningKey() }));
    expect(calls.fetched).toBe(0);
  });

  it('refuses a desired state that names another archive than the signed manifest', async () => {
    const { u, calls } = updater({ releasesDir: releasesDir() });
    await u.ensure(await desired({ sha256: 'a'.repeat(64) }));
    expect(stateOf(u)).toMatchObject({ state: 'failed', error: { code: 'UPDATE_INVALID' } });
    expect(stateOf(u).error?.message).toMatch(/desired state names/);
    expect(calls.fetched).toBe(0);
  });

  it('throws away bytes that do not match the manifest and stages nothing', async () => {
    const releases = releasesDir();
    const { u, calls, dataDir } = updater({
      releasesDir: releases,
      fetch: (part) => writeFile(part, 'not the release'),
    });
    await u.ensure(await desired());
    expect(stateOf(u)).toMatchObject({ state: 'failed', error: { code: 'UPDATE_INVALID' } });
    expect(calls.restarts).toEqual([]);
    expect(existsSync(join(dataDir, 'downloads', `${archiveSha}.part`))).toBe(false);
    expect((await releaseState(releases)).current).toBeNull();
  });

  it('keeps a partial download across a dropped connection and retries', async () => {
    const { u, dataDir } = updater({
      releasesDir: releasesDir(),
      fetch: async (part) => {
        await writeFile(part, (await readFile(archive)).subarray(0, 10));
        throw new AgentError('HUB_UNREACHABLE', 'connection reset', { transient: true });
      },
    });
    await expect(u.ensure(await desired())).rejects.toThrow(/connection reset/);
    expect(stateOf(u).state).toBe('downloading');
    expect(existsSync(join(dataDir, 'downloads', `${archiveSha}.part`))).toBe(true);
  });

  it('reports a release the launcher reverted as rolled back, without fetching it again', async () => {
    const releases = releasesDir();
    await mkdir(releases, { recursive: true });
    await writeFile(join(releases, 'failed'), '0.2.0\n');
    const { u, calls } = updater({ releasesDir: releases });
    await u.ensure(await desired());
    expect(stateOf(u)).toMatchObject({ state: 'rolled-back', error: { code: 'UPDATE_CRASH_LOOP' } });
    expect(calls.fetched).toBe(0);
  });
});
