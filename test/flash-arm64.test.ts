/**
 * `edgefleet flash --arch arm64` under emulation (Debian qemu-user-static and the arm64 glibc from
 * libc6-arm64-cross): the package's own arm64 Node binary runs its bundled agent, which enrolls with
 * a real hub, installs a deployed model, loads it with the package's arm64 onnxruntime binary and
 * answers an inference request with the model's true outputs. The package's cross-built
 * tfjs-tflite-node binding runs a .tflite model under the same Node, and the agent reports TFLite
 * available. Slow by nature (every instruction is translated), so the test waits generously and
 * asserts behaviour only.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkPackagedTflite,
  deployAndCheckInference,
  elfMachine,
  exec,
  expectTfliteRuntimes,
  type Flashed,
  flashPackage,
  flashRuntime,
  packagedTfliteScript,
  reportedRuntimes,
  startLogged,
  tinyTflite,
} from './support/flash.ts';
import { type HubProc, hubApi, spawnHub } from './support/processes.ts';
import { requireService, requireServices } from './support/services.ts';

const ARM64_SYSROOT = '/usr/aarch64-linux-gnu';
const qemu = await requireService('qemu');
const sysroot = await requireService('arm64-sysroot');
const runtime = qemu.available ? flashRuntime('arm64') : { available: false };
// TFLite in the arm64 package needs its binding cross-built (Debian's g++-aarch64-linux-gnu).
const crossCompiler = existsSync('/usr/bin/aarch64-linux-gnu-g++');
if (!crossCompiler && requireServices)
  throw new Error(
    'EDGEFLEET_REQUIRE_SERVICES=1 but aarch64-linux-gnu-g++ is missing (g++-aarch64-linux-gnu)',
  );

describe.skipIf(!qemu.available || !sysroot.available || !runtime.available)(
  'flash an arm64 agent package and run it under qemu',
  () => {
    let dir: string;
    let hub: HubProc;
    let flashed: Flashed;
    let enrollToken: string;

    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ef-flash-arm64-'));
      hub = await spawnHub({ dataDir: join(dir, 'hub') });
      const api = hubApi(hub.url, hub.adminToken);
      enrollToken = (await api<{ token: string }>('POST', '/enrollment-tokens', { uses: 1 })).token;
      flashed = await flashPackage([
        ...['--arch', 'arm64', '--hub', hub.url, '--enroll-token', enrollToken],
        ...['--name', 'pi-emulated', '--out', join(dir, 'out')],
      ]);
    }, 300_000);
    afterAll(async () => {
      await hub?.kill();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('holds arm64 natives only', async () => {
      const release = join(flashed.packageDir, 'release');
      expect(await elfMachine(join(release, 'bin/node'))).toBe('arm64');
      const ort = join(release, 'node_modules/onnxruntime-node/bin/napi-v6/linux');
      expect(await readdir(ort)).toEqual(['arm64']);
      expect(await elfMachine(join(ort, 'arm64/onnxruntime_binding.node'))).toBe('arm64');
      expect(JSON.parse(await readFile(join(release, 'release.json'), 'utf8'))).toMatchObject({
        arch: 'arm64',
        tflite: crossCompiler ? expect.any(String) : null,
      });
      expect(flashed.warnings.filter((w) => /TFLite/.test(w))).toHaveLength(crossCompiler ? 0 : 1);
    });

    it.skipIf(!crossCompiler)(
      'holds a cross-built arm64 TFLite binding that loads on old userlands and runs a .tflite model',
      async () => {
        const release = join(flashed.packageDir, 'release');
        const tflite = join(release, 'node_modules/tfjs-tflite-node');
        const binding = join(tflite, 'build/Release/node_tflite_binding.node');
        expect(await elfMachine(binding)).toBe('arm64');
        expect(await readdir(join(tflite, 'cc_deps'))).toEqual(['linux_arm64']);
        // Nothing newer than Debian 10's libstdc++ (GLIBCXX_3.4.25) and glibc 2.28 (Mendel 5, Coral Dev Board).
        const needs = await exec('readelf', ['-V', binding]);
        expect(needs.code, needs.stderr).toBe(0);
        // readelf listed the binding's version needs (so the checks below are not vacuous).
        expect(needs.stdout).toMatch(/GLIBCXX_3\.4\.21/);
        expect(needs.stdout).not.toMatch(/GLIBCXX_3\.4\.(2[6-9]|3\d)/);
        expect(needs.stdout).not.toMatch(/GLIBC_2\.(29|[3-9]\d)/);

        const model = await tinyTflite(dir, 11);
        const ran = await exec(
          '/usr/bin/qemu-aarch64-static',
          ['-L', ARM64_SYSROOT, join(release, 'bin/node'), '-e', packagedTfliteScript(release, model)],
          { LD_LIBRARY_PATH: '', NODE_PATH: '' },
        );
        expect(ran.code, ran.stderr).toBe(0);
        expect(JSON.parse(ran.stdout)).toMatchObject({ arch: 'arm64' });
        await checkPackagedTflite(release, model, ran.stdout);
      },
      300_000,
    );

    it('enrolls, loads a deployed model with the arm64 onnxruntime, and answers inference', async () => {
      const release = join(flashed.packageDir, 'release');
      // qemu-user shows the emulated process the host's /proc/cpuinfo; onnxruntime's CPU probe
      // crashes on an x86 one (seen on an AMD EPYC host), so the agent sees a recorded Raspberry
      // Pi 4's instead, bind-mounted in a private mount namespace.
      const cpuinfo = join(import.meta.dirname, '../device-profiles/test/fixtures/rpi4/proc/cpuinfo');
      const emulated = [
        ...['/usr/bin/qemu-aarch64-static', '-L', ARM64_SYSROOT, join(release, 'bin/node')],
        ...[join(release, 'edgefleet.mjs'), 'agent', '--hub', hub.url, '--enroll-token', enrollToken],
        ...['--name', 'pi-emulated', '--data', join(dir, 'agent'), '--port', '0', '--profile', 'linux-arm64'],
      ];
      const agent = startLogged('unshare', [
        ...['--mount', 'sh', '-c', 'mount --bind "$0" /proc/cpuinfo && exec "$@"', cpuinfo],
        ...emulated,
      ]);
      try {
        const ready = await agent.waitForLog('agent ready', 240_000);
        const api = hubApi(hub.url, hub.adminToken);
        const { devices } = await api<{
          devices: { name: string; profile: string; facts: { arch: string } }[];
        }>('GET', '/devices');
        expect(devices.find((d) => d.name === 'pi-emulated')).toMatchObject({
          profile: 'linux-arm64',
          facts: { arch: 'arm64' },
        });
        if (crossCompiler) expectTfliteRuntimes(await reportedRuntimes(hub, 'pi-emulated'));

        await deployAndCheckInference(hub, dir, String(ready.inference), {
          seed: 11,
          readyTimeoutMs: 240_000,
        });
        expect(agent.output.join('\n')).toMatch(/"backend":"onnxruntime-cpu"/);
      } finally {
        await agent.kill();
      }
    }, 600_000);
  },
);
