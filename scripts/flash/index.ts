/**
 * `edgefleet flash`: an installable agent package for one architecture, its release archive (also
 * the self-update artifact), and the files for a Raspberry Pi OS boot partition.
 *
 *   OUT/edgefleet-agent-<v>-linux-<arch>/          install.sh, launch.sh, unit, enroll.env, release/
 *   OUT/edgefleet-agent-<v>-linux-<arch>.tar.gz    the same without enroll.env (self-update archive)
 *   OUT/edgefleet-agent-<v>-linux-<arch>.release-manifest.json (+ .sig with --key)
 *   OUT/boot/                                      copy onto the card's boot partition
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type SigningKeyFile, signManifest } from '@edgefleet/bundle';
import { agentReleaseManifest, EDGEFLEET_VERSION } from '@edgefleet/protocol';
import { prepareBootPartition, writeBootFiles } from './boot.ts';
import { FlashError } from './errors.ts';
import { type Arch, buildRelease, type ReleaseInfo } from './release.ts';

const run = promisify(execFile);

export { FlashError } from './errors.ts';
export type { Arch, ReleaseInfo } from './release.ts';

export interface FlashOptions {
  arch: Arch;
  hub: string;
  enrollToken: string;
  out: string;
  name?: string;
  profile?: string;
  /** A mounted boot partition to write the first-boot files into and hook. */
  boot?: string;
  /** The release version stamped into the agent (default: this checkout's). */
  version?: string;
  /** Sign the release manifest (self-update artifact) with this key. */
  key?: SigningKeyFile;
  /** Fetch the arch's runtime from the npm registry if it is missing (default: fail instead). */
  prepare?: boolean;
  /** The project checkout; found from this file by default. */
  root?: string;
}

export interface FlashResult {
  release: ReleaseInfo;
  packageDir: string;
  archive: string;
  archiveBytes: number;
  releaseManifest: string;
  bootDir: string;
  bootMechanism?: 'cloud-init' | 'imager-firstrun' | 'cmdline';
  warnings: string[];
}

/** The project checkout this code runs from (the CLI bundle lives in packages/cli/dist). */
export function projectRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'scripts/flash/templates/install.sh')) && existsSync(join(dir, 'package.json')))
      return dir;
    const up = dirname(dir);
    if (up === dir) throw new FlashError('FLASH_BUILD_FAILED', 'cannot find the edgefleet project checkout');
    dir = up;
  }
}

const envLine = (key: string, value: string | undefined) => {
  if (value === undefined) return '';
  if (!/^[A-Za-z0-9_.:/@%+=,-]*$/.test(value))
    throw new FlashError(
      'FLASH_OPTIONS_INVALID',
      `${key} contains characters a shell env file cannot hold safely`,
    );
  return `${key}=${value}\n`;
};

/** Refuses options that cannot work; returns warnings for ones that work only in special setups. */
function checkOptions(o: FlashOptions): string[] {
  if (o.arch !== 'arm64' && o.arch !== 'x64')
    throw new FlashError('FLASH_OPTIONS_INVALID', `--arch must be arm64 or x64, got "${String(o.arch)}"`);
  if (o.version !== undefined && !agentReleaseManifest.shape.version.safeParse(o.version).success)
    throw new FlashError(
      'FLASH_OPTIONS_INVALID',
      `--release-version must look like 0.2.0 or 0.2.0-rc.1, got "${o.version}"`,
    );
  let url: URL;
  try {
    url = new URL(o.hub);
  } catch {
    throw new FlashError(
      'FLASH_OPTIONS_INVALID',
      `--hub must be a URL such as http://hub.local:8080, got "${o.hub}"`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new FlashError('FLASH_OPTIONS_INVALID', '--hub must be an http:// or https:// URL');
  if (!/^[A-Za-z0-9_-]{10,200}$/.test(o.enrollToken))
    throw new FlashError(
      'FLASH_OPTIONS_INVALID',
      '--enroll-token does not look like an enrollment token (efe_…)',
    );
  return /^(localhost|127\.|\[::1\])/.test(url.host)
    ? [
        `--hub ${o.hub} is this machine's loopback address: only an agent on the hub's own machine can reach it`,
      ]
    : [];
}

/** Build everything for `o.arch` under `o.out`. */
export async function flash(o: FlashOptions): Promise<FlashResult> {
  const warnings = checkOptions(o);
  const root = o.root ?? projectRoot();
  const templates = join(root, 'scripts/flash/templates');
  const out = resolve(o.out);
  const version = o.version ?? EDGEFLEET_VERSION;
  const base = `edgefleet-agent-${version}-linux-${o.arch}`;
  const pkg = join(out, base);
  // The first directory this run creates on the way to `out`, if any: removed again if it fails.
  const created = await mkdir(out, { recursive: true });
  try {
    await rm(pkg, { recursive: true, force: true });
    const release = await buildRelease({
      arch: o.arch,
      version,
      root,
      dir: join(pkg, 'release'),
      prepare: o.prepare ?? false,
      onWarning: (w) => warnings.push(w),
    });
    for (const file of ['install.sh', 'launch.sh', 'edgefleet-agent.service']) {
      await copyFile(join(templates, file), join(pkg, file));
      if (file.endsWith('.sh')) await chmod(join(pkg, file), 0o755);
    }
    await writeFile(
      join(pkg, 'README.txt'),
      `edgefleet agent ${release.version} for linux-${o.arch} (Node ${release.node}, onnxruntime ${release.onnxruntime})\n\n` +
        `On the device:  sudo ./install.sh --env enroll.env\n` +
        `It creates the user edgefleet, installs to /opt/edgefleet, keeps state in /var/lib/edgefleet,\n` +
        `and starts edgefleet-agent.service (journalctl -u edgefleet-agent -f).\n`,
    );
    const enrollEnv =
      '# edgefleet enrollment settings (the token is consumed at first start)\n' +
      envLine('EDGEFLEET_HUB', o.hub) +
      envLine('EDGEFLEET_ENROLL_TOKEN', o.enrollToken) +
      envLine('EDGEFLEET_NAME', o.name) +
      envLine('EDGEFLEET_PROFILE', o.profile);

    // The archive has no enrollment token in it: it doubles as the self-update artifact.
    const archive = join(out, `${base}.tar.gz`);
    await rm(archive, { force: true });
    try {
      await run('tar', ['-czf', archive, '-C', out, '--owner=0', '--group=0', base], { maxBuffer: 1 << 20 });
    } catch (cause) {
      throw new FlashError('FLASH_BUILD_FAILED', `tar failed: ${(cause as Error).message}`, { cause });
    }
    await writeFile(join(pkg, 'enroll.env'), enrollEnv, { mode: 0o600 });
    const bytes = await readFile(archive);
    const manifest = {
      format: 'edgefleet-agent-release',
      version: release.version,
      arch: o.arch,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      size_bytes: bytes.byteLength,
    };
    const manifestPath = join(out, `${base}.release-manifest.json`);
    const manifestBytes = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
    await writeFile(manifestPath, manifestBytes);
    if (o.key)
      await writeFile(`${manifestPath}.sig`, JSON.stringify(await signManifest(manifestBytes, o.key)));

    const bootDir = join(out, 'boot');
    await rm(bootDir, { recursive: true, force: true });
    const bootFiles = { templates, archive, enrollEnv };
    await writeBootFiles(bootDir, bootFiles);
    const result: FlashResult = {
      release,
      packageDir: pkg,
      archive,
      archiveBytes: (await stat(archive)).size,
      releaseManifest: manifestPath,
      bootDir,
      warnings,
    };
    if (o.boot) result.bootMechanism = await prepareBootPartition(resolve(o.boot), bootFiles);
    return result;
  } catch (error) {
    if (created) await rm(created, { recursive: true, force: true });
    throw error;
  }
}
