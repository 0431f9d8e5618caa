import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, signManifest } from '@edgefleet/bundle';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { releaseState } from '../agent/src/self-update.ts';
import { crashingRelease, releaseManifestFor } from './support/agent-release.ts';
import {
  deployAndCheckInference,
  exec,
  type Flashed,
  fakeRoot,
  flashPackage,
  flashRuntime,
  installedEnv,
  type LoggedProc,
  startLogged,
} from './support/flash.ts';
import { type HubProc, hubApi, runCli, spawnHub } from './support/processes.ts';
import { requireService, waitFor } from './support/services.ts';

const runtime = flashRuntime('x64');
const root = await requireService('tmpfs'); // install.sh chowns to a system user

interface ReleaseStatus {
  devices: {
    name: string;
    runningVersion: string;
    update: { state: string; version: string; error?: { code: string; message: string } } | null;
  }[];
}

describe.skipIf(!runtime.available || !root.available)('agent self-update', () => {
  let dir: string;
  let hub: HubProc;
  let keyFile: string;
  let v010: Flashed;
  let v011: Flashed;
  let cli: Record<string, string>;
  const running: LoggedProc[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-self-update-'));
    hub = await spawnHub({ dataDir: join(dir, 'hub') });
    cli = { EDGEFLEET_HUB: hub.url, EDGEFLEET_TOKEN: hub.adminToken };
    keyFile = join(dir, 'release-key.json');
    await writeFile(keyFile, JSON.stringify(await generateSigningKey()), { mode: 0o600 });
    const registered = await runCli(['keys', 'register', '--name', 'releases', '--key', keyFile], cli);
    expect(registered.code, registered.stderr).toBe(0);
    const token = (await runCli(['token', 'create', '--uses', '1'], cli)).stdout.trim();
    const common = ['--arch', 'x64', '--hub', hub.url, '--enroll-token', token, '--key', keyFile];
    v010 = await flashPackage([...common, '--name', 'updater', '--out', join(dir, 'out')]);
    v011 = await flashPackage([...common, '--release-version', '0.1.1', '--out', join(dir, 'out')]);
  }, 400_000);
  afterAll(async () => {
    for (const p of running) await p.kill();
    await hub?.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stamps the release version into the agent and its archive name', () => {
    expect(v010.release.version).toBe('0.1.0');
    expect(v011.release.version).toBe('0.1.1');
    expect(v011.archive).toMatch(/edgefleet-agent-0\.1\.1-linux-x64\.tar\.gz$/);
  });

  it('delivers a new release through the hub, and reverts one that keeps crashing', async () => {
    const target = await fakeRoot(join(dir, 'root'));
    const installed = await exec(join(v010.packageDir, 'install.sh'), [
      '--root',
      target,
      '--env',
      join(v010.packageDir, 'enroll.env'),
    ]);
    expect(installed.code, installed.stderr).toBe(0);
    const state = join(dir, 'state');
    const releases = join(state, 'releases');
    const env = {
      ...(await installedEnv(target)),
      EDGEFLEET_PREFIX: join(target, 'opt/edgefleet'),
      EDGEFLEET_STATE: state,
      EDGEFLEET_PORT: '0',
      EDGEFLEET_CONFIRM_AFTER_S: '2',
    };
    // What systemd's Restart=on-failure does with the unit: start the launcher again whenever it
    // exits with a failure (a crash, or 75 after staging an update), a second later.
    const launcher = join(target, 'opt/edgefleet/launch.sh');
    const supervisor = startLogged(
      'sh',
      [
        '-c',
        `trap 'kill $pid 2>/dev/null; wait $pid; exit 0' TERM
         while :; do "${launcher}" & pid=$!; wait $pid; rc=$?; echo "supervisor: exited $rc" >&2
           [ "$rc" = 0 ] && exit 0; sleep 1; done`,
      ],
      env,
    );
    running.push(supervisor);
    const api = hubApi(hub.url, hub.adminToken);
    const status = (version: string) => api<ReleaseStatus>('GET', `/agent-releases/${version}`);
    const inferenceUrl = async () => String((await supervisor.waitForLog('agent ready')).inference);

    await deployAndCheckInference(hub, dir, await inferenceUrl(), { seed: 3, readyTimeoutMs: 120_000 });

    // 0.1.1 through the hub.
    const published = await runCli(['agent-release', 'publish', v011.archive], cli);
    expect(published.code, published.stderr).toBe(0);
    const deployed = await runCli(['agent-release', 'deploy', '0.1.1', '--to', 'all', '--json'], cli);
    expect(deployed.code, deployed.stderr).toBe(0);
    expect(JSON.parse(deployed.stdout).devices).toMatchObject([{ name: 'updater', state: 'assigned' }]);
    await waitFor(
      async () => {
        const d = (await status('0.1.1')).devices[0];
        return d?.runningVersion === '0.1.1' && d.update?.state === 'active';
      },
      'the device running 0.1.1',
      180_000,
      1000,
    );
    const log = () => supervisor.output.join('\n');
    expect(log()).toMatch(/supervisor: exited 75/);
    expect(log()).toMatch(/release 0\.1\.1 on probation, start 1 of 3/);
    await waitFor(async () => (await releaseState(releases)).pending === null, '0.1.1 confirmed', 60_000);
    expect(await releaseState(releases)).toMatchObject({ current: '0.1.1', pending: null });
    // Same identity and the same model, served by the new release.
    const { devices } = await api<{ devices: { name: string }[] }>('GET', '/devices');
    expect(devices.map((d) => d.name)).toEqual(['updater']);
    await waitFor(
      async () => (await fetch(`${await inferenceUrl()}/models/m/ready`)).ok,
      'the model served by 0.1.1',
      60_000,
      500,
    );

    // 0.1.2: its Node dies at once, on every start.
    const archive = await crashingRelease(join(dir, 'broken'), '0.1.2');
    const manifestBytes = releaseManifestFor(await readFile(archive), '0.1.2');
    const manifestPath = archive.replace(/\.tar\.gz$/, '.release-manifest.json');
    await writeFile(manifestPath, manifestBytes);
    const key = JSON.parse(await readFile(keyFile, 'utf8'));
    await writeFile(`${manifestPath}.sig`, JSON.stringify(await signManifest(manifestBytes, key)));
    expect((await runCli(['agent-release', 'publish', archive], cli)).code).toBe(0);
    expect((await runCli(['agent-release', 'deploy', '0.1.2', '--to', 'all'], cli)).code).toBe(0);
    await waitFor(
      async () => (await status('0.1.2')).devices[0]?.update?.state === 'rolled-back',
      'the crashing release reported rolled back',
      180_000,
      1000,
    ).catch(async (error: Error) => {
      throw new Error(
        `${error.message}: ${JSON.stringify((await status('0.1.2')).devices)}\n${supervisor.output.slice(-25).join('\n')}`,
      );
    });
    const [device] = (await status('0.1.2')).devices;
    expect(device?.runningVersion).toBe('0.1.1');
    expect(device?.update?.error?.code).toBe('UPDATE_CRASH_LOOP');
    expect(log()).toMatch(/release 0\.1\.2 crashed 3 times on probation; reverting/);
    expect(await releaseState(releases)).toMatchObject({ current: '0.1.1', failed: ['0.1.2'] });
  }, 600_000);
});
