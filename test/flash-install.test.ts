/**
 * `edgefleet flash --arch x64`: the package holds only x64 natives and a Node binary; its own Node
 * runs a .tflite model with the package's tfjs-tflite-node binding; install.sh is idempotent in a
 * fake root and its unit passes `systemd-analyze verify`; the installed launcher starts the bundled
 * agent, which enrolls, reports TFLite available, runs a deployed model, and confirms its release.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { generateSigningKey, publicKeyOf, signManifest } from '@edgefleet/bundle';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseState, stageRelease } from '../agent/src/self-update.ts';
import { crashingRelease, releaseManifestFor } from './support/agent-release.ts';
import {
  checkPackagedTflite,
  deployAndCheckInference,
  elfMachine,
  exec,
  expectTfliteRuntimes,
  type Flashed,
  fakeRoot,
  flashPackage,
  flashRuntime,
  installedEnv,
  packagedTfliteScript,
  reportedRuntimes,
  startLogged,
  tinyTflite,
  verifyUnit,
} from './support/flash.ts';
import { type HubProc, hubApi, runCli, spawnHub } from './support/processes.ts';
import { requireService, waitFor } from './support/services.ts';

const runtime = flashRuntime('x64');
const root = await requireService('tmpfs'); // installing and mount namespaces need root

async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (p.includes('/opt/edgefleet/release/')) continue;
      const hash = e.isFile()
        ? createHash('sha256')
            .update(await readFile(p))
            .digest('hex')
            .slice(0, 12)
        : '';
      out.push(`${relative(dir, p)} ${hash}`);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out.sort();
}

describe.skipIf(!runtime.available || !root.available)('flash an x64 agent package', () => {
  let dir: string;
  let hub: HubProc;
  let flashed: Flashed;
  let enrollToken: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-flash-x64-'));
    hub = await spawnHub({ dataDir: join(dir, 'hub') });
    const token = await runCli(['token', 'create', '--uses', '2'], {
      EDGEFLEET_HUB: hub.url,
      EDGEFLEET_TOKEN: hub.adminToken,
    });
    enrollToken = token.stdout.trim();
    flashed = await flashPackage([
      '--arch',
      'x64',
      '--hub',
      hub.url,
      '--enroll-token',
      enrollToken,
      '--name',
      'x64-box',
      '--out',
      join(dir, 'out'),
    ]);
  }, 300_000);
  afterAll(async () => {
    await hub?.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('packages the bundled agent, x64 natives only, a Node binary, and a release archive without the token', async () => {
    const release = join(flashed.packageDir, 'release');
    expect(await elfMachine(join(release, 'bin/node'))).toBe('x64');
    expect(await readdir(join(release, 'node_modules/onnxruntime-node/bin/napi-v6/linux'))).toEqual(['x64']);
    expect(existsSync(join(release, 'node_modules/@img/sharp-linux-x64/lib'))).toBe(true);
    expect(existsSync(join(release, 'node_modules/@img/sharp-linux-arm64'))).toBe(false);
    expect(JSON.parse(await readFile(join(release, 'release.json'), 'utf8'))).toMatchObject({ arch: 'x64' });
    const listing = await exec('tar', ['-tzf', flashed.archive]);
    expect(listing.stdout).toMatch(/\/release\/edgefleet\.mjs$/m);
    expect(listing.stdout).not.toMatch(/enroll\.env/);
    const manifest = JSON.parse(await readFile(flashed.releaseManifest, 'utf8'));
    expect(manifest.sha256).toBe(
      createHash('sha256')
        .update(await readFile(flashed.archive))
        .digest('hex'),
    );
    expect(await readFile(join(flashed.packageDir, 'enroll.env'), 'utf8')).toContain(
      `EDGEFLEET_ENROLL_TOKEN=${enrollToken}`,
    );
    expect(flashed.warnings[0]).toMatch(/loopback/);
    expect((await readdir(flashed.bootDir)).sort()).toEqual(['edgefleet', 'vendor-data']);
    // Both copies of the enrollment token are readable by their owner only.
    for (const copy of [
      join(flashed.packageDir, 'enroll.env'),
      join(flashed.bootDir, 'edgefleet/enroll.env'),
    ])
      expect((await stat(copy)).mode & 0o777, copy).toBe(0o600);
  });

  it('holds the x64 TFLite binding and library, and its own Node runs a .tflite model the way the agent loads it', async () => {
    const release = join(flashed.packageDir, 'release');
    const tflite = join(release, 'node_modules/tfjs-tflite-node');
    expect(flashed.release).toMatchObject({ tflite: expect.any(String) });
    expect(await elfMachine(join(tflite, 'build/Release/node_tflite_binding.node'))).toBe('x64');
    expect(await readdir(join(tflite, 'cc_deps'))).toEqual(['linux_amd64']);
    expect(existsSync(join(release, 'node_modules/coral-tflite-delegate/package.json'))).toBe(true);

    const model = await tinyTflite(dir, 11);
    const ran = await exec(join(release, 'bin/node'), ['-e', packagedTfliteScript(release, model)], {
      LD_LIBRARY_PATH: '',
      NODE_PATH: '',
    });
    expect(ran.code, ran.stderr).toBe(0);
    expect(JSON.parse(ran.stdout)).toMatchObject({ arch: 'x64' });
    await checkPackagedTflite(release, model, ran.stdout);
  }, 120_000);

  it('install.sh is idempotent in a fake root, keeps settings, and its unit passes systemd-analyze verify', async () => {
    const target = await fakeRoot(join(dir, 'root-idem'));
    const install = join(flashed.packageDir, 'install.sh');
    const first = await exec(install, ['--root', target, '--env', join(flashed.packageDir, 'enroll.env')]);
    expect(first.code, first.stderr).toBe(0);
    const before = await tree(target);
    const second = await exec(install, ['--root', target]);
    expect(second.code, second.stderr).toBe(0);
    expect(await tree(target)).toEqual(before);

    const passwd = await readFile(join(target, 'etc/passwd'), 'utf8');
    expect(passwd.match(/^edgefleet:/gm)).toHaveLength(1);
    expect(passwd).toMatch(/^edgefleet:x:\d+:\d+:edgefleet agent:\/var\/lib\/edgefleet:/m);
    const env = await readFile(join(target, 'etc/edgefleet/agent.env'), 'utf8');
    expect(env).toContain(`EDGEFLEET_HUB=${hub.url}`);
    expect(env).toContain('EDGEFLEET_NAME=x64-box');
    // Enabled offline: the symlink points at the unit as the booted system will see it.
    expect(
      await readlink(join(target, 'etc/systemd/system/multi-user.target.wants/edgefleet-agent.service')),
    ).toBe('/etc/systemd/system/edgefleet-agent.service');
    const unit = await readFile(join(target, 'etc/systemd/system/edgefleet-agent.service'), 'utf8');
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^User=edgefleet$/m);
    expect(unit).toMatch(/^StateDirectory=edgefleet$/m);

    // A third run with a new hub changes only that setting, and keeps lines added by hand.
    await writeFile(join(target, 'etc/edgefleet/agent.env'), `${env}EDGEFLEET_PORT=9000\n`);
    const third = await exec(install, ['--root', target, '--hub', 'http://hub.example:8080']);
    expect(third.code, third.stderr).toBe(0);
    const changed = await readFile(join(target, 'etc/edgefleet/agent.env'), 'utf8');
    expect(changed).toBe(
      `${env.replace(`EDGEFLEET_HUB=${hub.url}`, 'EDGEFLEET_HUB=http://hub.example:8080')}EDGEFLEET_PORT=9000\n`,
    );
    expect(changed).toContain(`EDGEFLEET_ENROLL_TOKEN=${enrollToken}`);

    const verified = await verifyUnit(target);
    expect(verified.code, verified.stderr).toBe(0);
    // …and verify does catch a broken install: a launcher that cannot be executed.
    await chmod(join(target, 'opt/edgefleet/launch.sh'), 0o644);
    const broken = await verifyUnit(target);
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toMatch(/launch\.sh is not executable/);
  });

  it('install.sh refuses what it cannot do, with one clear line', async () => {
    const install = join(flashed.packageDir, 'install.sh');
    const bad = await exec(install, ['--root', join(dir, 'missing-root')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--root .* does not exist/);
    const unknown = await exec(install, ['--frobnicate']);
    expect(unknown.stderr).toMatch(/unknown option --frobnicate/);
  });

  it('the installed launcher runs a release on probation: the agent enrolls, serves a deployed model, and confirms itself', async () => {
    const target = await fakeRoot(join(dir, 'root-run'));
    const installed = await exec(join(flashed.packageDir, 'install.sh'), [
      '--root',
      target,
      '--env',
      join(flashed.packageDir, 'enroll.env'),
    ]);
    expect(installed.code, installed.stderr).toBe(0);
    // Stage the same archive as a self-update, so the launcher starts it on probation.
    const state = join(dir, 'state');
    const key = await generateSigningKey();
    const manifestBytes = await readFile(flashed.releaseManifest);
    await stageRelease({
      releasesDir: join(state, 'releases'),
      archivePath: flashed.archive,
      manifestBytes,
      signature: await signManifest(manifestBytes, key),
      trustedKeys: [publicKeyOf(key)],
    });
    expect((await releaseState(join(state, 'releases'))).pending).toBe(flashed.release.version);

    const env = await installedEnv(target);
    const agent = startLogged(join(target, 'opt/edgefleet/launch.sh'), [], {
      ...env,
      EDGEFLEET_PREFIX: join(target, 'opt/edgefleet'),
      EDGEFLEET_STATE: state,
      EDGEFLEET_PORT: '0',
      EDGEFLEET_CONFIRM_AFTER_S: '1',
    });
    try {
      const ready = await agent.waitForLog('agent ready');
      expect(agent.output.join('\n')).toMatch(/release 0\.1\.0 on probation, start 1 of 3/);
      await waitFor(
        async () => (await releaseState(join(state, 'releases'))).pending === null,
        'release confirmed',
      );
      expect(agent.output.join('\n')).toMatch(/release 0\.1\.0 confirmed healthy/);

      const api = hubApi(hub.url, hub.adminToken);
      const { devices } = await api<{
        devices: { name: string; profile: string; facts: { arch: string } }[];
      }>('GET', '/devices');
      expect(devices.find((d) => d.name === 'x64-box')).toMatchObject({ profile: 'linux-x64' });
      // The packaged agent has its TFLite backends (no Coral stick here: no libedgetpu).
      expectTfliteRuntimes(await reportedRuntimes(hub, 'x64-box'));

      await deployAndCheckInference(hub, dir, String(ready.inference), { seed: 7, readyTimeoutMs: 120_000 });
    } finally {
      await agent.kill();
    }
  }, 300_000);

  it('the launcher reverts a release that keeps crashing on probation, and the factory release serves again', async () => {
    const target = await fakeRoot(join(dir, 'root-crash'));
    const installed = await exec(join(flashed.packageDir, 'install.sh'), [
      '--root',
      target,
      '--env',
      join(flashed.packageDir, 'enroll.env'),
    ]);
    expect(installed.code, installed.stderr).toBe(0);
    const archivePath = await crashingRelease(join(dir, 'broken'), '0.2.0');
    const manifestBytes = releaseManifestFor(await readFile(archivePath), '0.2.0');
    const key = await generateSigningKey();
    const releases = join(dir, 'state-crash', 'releases');
    const stage = async () =>
      stageRelease({
        releasesDir: releases,
        archivePath,
        manifestBytes,
        signature: await signManifest(manifestBytes, key),
        trustedKeys: [publicKeyOf(key)],
        arch: 'x64',
      });
    await stage();
    expect(await releaseState(releases)).toMatchObject({ current: '0.2.0', pending: '0.2.0' });

    const env = {
      ...(await installedEnv(target)),
      EDGEFLEET_PREFIX: join(target, 'opt/edgefleet'),
      EDGEFLEET_STATE: join(dir, 'state-crash'),
      EDGEFLEET_PORT: '0',
    };
    // What systemd's Restart=on-failure does: start again after each crash.
    for (let start = 1; start <= 3; start++) {
      const crashed = startLogged(join(target, 'opt/edgefleet/launch.sh'), [], env);
      expect(await crashed.exited).not.toBe(0);
      expect(crashed.output.join('\n')).toContain(`release 0.2.0 on probation, start ${start} of 3`);
    }
    const agent = startLogged(join(target, 'opt/edgefleet/launch.sh'), [], env);
    try {
      await agent.waitForLog('agent ready');
      expect(agent.output.join('\n')).toMatch(/release 0\.2\.0 crashed 3 times on probation; reverting/);
      expect(await releaseState(releases)).toMatchObject({ current: null, pending: null, failed: ['0.2.0'] });
    } finally {
      await agent.kill();
    }
    // …and the same release is never staged here again.
    await expect(stage()).rejects.toThrow(/crashed here before/);
  }, 300_000);
});
