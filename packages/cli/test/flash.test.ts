/**
 * `edgefleet flash` without building a real package: install.sh's handling of an existing
 * agent.env (run from a stand-in package into a fake root), the usage line, the modes of the
 * enrollment files it writes, and the --out directory a failed build leaves behind.
 */
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prepareBootPartition, writeBootFiles } from '../../../scripts/flash/boot.ts';
import { flash } from '../../../scripts/flash/index.ts';
import { exec, fakeRoot } from '../../../test/support/flash.ts';
import { projectRoot } from '../../../test/support/services.ts';
import { flashCommand } from '../src/commands/flash.ts';

const templates = join(projectRoot, 'scripts/flash/templates');
const dir = await mkdtemp(join(tmpdir(), 'ef-flash-unit-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const TOKEN = 'efe_abcdefghijklmnop';

/** A package directory with the real scripts and a stand-in release (install.sh only copies it). */
async function standInPackage(at: string): Promise<string> {
  await mkdir(join(at, 'release/bin'), { recursive: true });
  for (const f of ['install.sh', 'launch.sh', 'edgefleet-agent.service'])
    await copyFile(join(templates, f), join(at, f));
  await chmod(join(at, 'install.sh'), 0o755);
  await writeFile(join(at, 'release/edgefleet.mjs'), '');
  await writeFile(join(at, 'release/bin/node'), '#!/bin/sh\n');
  await chmod(join(at, 'release/bin/node'), 0o755);
  await writeFile(join(at, 'release/release.json'), '{ "version": "0.1.0", "arch": "x64" }\n');
  return at;
}

describe.skipIf(process.getuid?.() !== 0)('install.sh and an existing agent.env (needs root)', () => {
  it('updates only the keys it is given, keeps every other line, and is idempotent', async () => {
    const pkg = await standInPackage(join(dir, 'pkg'));
    const target = await fakeRoot(join(dir, 'root-env'));
    const install = join(pkg, 'install.sh');
    const envPath = join(target, 'etc/edgefleet/agent.env');
    const run = async (args: string[]) => {
      const r = await exec(install, ['--root', target, ...args]);
      expect(r.code, r.stderr).toBe(0);
      return readFile(envPath, 'utf8');
    };

    const first = await run(['--hub', 'http://hub.one:8080', '--enroll-token', TOKEN, '--name', 'pi-1']);
    expect(first.split('\n').filter((l) => /^[A-Z_]+=/.test(l))).toEqual([
      'EDGEFLEET_HUB=http://hub.one:8080',
      `EDGEFLEET_ENROLL_TOKEN=${TOKEN}`,
      'EDGEFLEET_NAME=pi-1',
      'EDGEFLEET_LOG_LEVEL=info',
    ]);

    // What an operator adds or changes by hand (the last line has no newline).
    const edited = `${first.replace('EDGEFLEET_LOG_LEVEL=info', 'EDGEFLEET_LOG_LEVEL=debug')}# local settings\nEDGEFLEET_NODE_OPTIONS=\nEDGEFLEET_PORT=9000\nEDGEFLEET_CA=/etc/edgefleet/ca.pem`;
    await writeFile(envPath, edited);

    const envFile = join(dir, 'enroll.env');
    await writeFile(envFile, 'EDGEFLEET_HUB=http://hub.two:8080\nEDGEFLEET_PROFILE=rpi-5\n');
    const args = ['--name', 'pi-2', '--env', envFile];
    const second = await run(args);
    expect(second).toBe(
      edited
        .replace('EDGEFLEET_HUB=http://hub.one:8080', 'EDGEFLEET_HUB=http://hub.two:8080')
        .replace('EDGEFLEET_NAME=pi-1', 'EDGEFLEET_NAME=pi-2') + '\nEDGEFLEET_PROFILE=rpi-5\n',
    );
    expect(await run(args)).toBe(second);
    // No options: left exactly as it is.
    expect(await run([])).toBe(second);
    expect((await stat(envPath)).mode & 0o777).toBe(0o640);
    expect((await readdir(join(target, 'etc/edgefleet'))).sort()).toEqual(['agent.env']);
  });

  it('drops older duplicates of a key it sets, so the new value is the one that counts', async () => {
    const pkg = await standInPackage(join(dir, 'pkg-dup'));
    const target = await fakeRoot(join(dir, 'root-dup'));
    await mkdir(join(target, 'etc/edgefleet'), { recursive: true });
    const envPath = join(target, 'etc/edgefleet/agent.env');
    await writeFile(envPath, 'EDGEFLEET_HUB=http://a\nEDGEFLEET_PORT=1\nEDGEFLEET_HUB=http://b\n');
    const r = await exec(join(pkg, 'install.sh'), ['--root', target, '--hub', 'http://c']);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(envPath, 'utf8')).toBe('EDGEFLEET_HUB=http://c\nEDGEFLEET_PORT=1\n');
  });
});

describe('edgefleet flash', () => {
  it('says in its usage line that --hub is required unless EDGEFLEET_HUB is set', () => {
    expect(flashCommand.usage).toContain('--hub URL (or EDGEFLEET_HUB)');
    expect(flashCommand.usage).not.toContain('[--hub URL]');
  });

  it('writes the boot copy of enroll.env 0600, also over an existing file on a --boot partition', async () => {
    const archive = join(dir, 'a.tar.gz');
    await writeFile(archive, 'not really an archive');
    const files = { templates, archive, enrollEnv: `EDGEFLEET_ENROLL_TOKEN=${TOKEN}\n` };
    const out = join(dir, 'out-boot');
    await writeBootFiles(out, files);
    expect((await stat(join(out, 'edgefleet/enroll.env'))).mode & 0o777).toBe(0o600);

    const partition = join(dir, 'bootfs');
    await mkdir(join(partition, 'edgefleet'), { recursive: true });
    await writeFile(join(partition, 'cmdline.txt'), 'console=tty1 root=PARTUUID=1234-02 rootwait\n');
    await writeFile(join(partition, 'edgefleet/enroll.env'), 'old\n', { mode: 0o644 });
    await chmod(join(partition, 'edgefleet/enroll.env'), 0o644);
    expect(await prepareBootPartition(partition, files)).toBe('cmdline');
    expect((await stat(join(partition, 'edgefleet/enroll.env'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(partition, 'edgefleet/enroll.env'), 'utf8')).toBe(files.enrollEnv);
  });

  it('removes the --out directory it created when the build fails, and keeps one that was there', async () => {
    // A checkout without the arch's runtime: the build stops with FLASH_RUNTIME_MISSING.
    const root = join(dir, 'checkout');
    await mkdir(join(root, 'scripts/flash/runtime/linux-x64'), { recursive: true });
    await writeFile(join(root, 'package.json'), '{ "version": "0.1.0" }\n');
    await copyFile(
      join(projectRoot, 'scripts/flash/runtime/linux-x64/package.json'),
      join(root, 'scripts/flash/runtime/linux-x64/package.json'),
    );
    const options = { arch: 'x64' as const, hub: 'http://hub.local:8080', enrollToken: TOKEN, root };

    const fresh = join(dir, 'fresh');
    await expect(flash({ ...options, out: join(fresh, 'nested/out') })).rejects.toMatchObject({
      code: 'FLASH_RUNTIME_MISSING',
    });
    expect(existsSync(fresh)).toBe(false);

    const existing = join(dir, 'existing');
    await mkdir(existing);
    await writeFile(join(existing, 'keep.txt'), 'mine');
    await expect(flash({ ...options, out: existing })).rejects.toMatchObject({
      code: 'FLASH_RUNTIME_MISSING',
    });
    expect(await readdir(existing)).toEqual(['keep.txt']);
  });
});
