/** Agent release fixtures for tests: the manifest `edgefleet flash` writes, and a release that crashes. */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The release manifest describing an archive's bytes, as `edgefleet flash` writes it. */
export function releaseManifestFor(archive: Uint8Array, version: string, arch = 'x64'): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({
      format: 'edgefleet-agent-release',
      version,
      arch,
      sha256: createHash('sha256').update(archive).digest('hex'),
      size_bytes: archive.byteLength,
    }),
  );
}

/**
 * An x64 release archive laid out as `edgefleet flash` lays it out, whose Node dies at once: what a
 * bad build looks like to the launcher. Written under `dir`; returns the archive's path.
 */
export async function crashingRelease(dir: string, version: string): Promise<string> {
  const name = `edgefleet-agent-${version}-linux-x64`;
  const release = join(dir, name, 'release');
  await mkdir(join(release, 'bin'), { recursive: true });
  await writeFile(join(release, 'bin', 'node'), '#!/bin/sh\necho "broken release" >&2\nexit 1\n');
  await chmod(join(release, 'bin', 'node'), 0o755);
  await writeFile(join(release, 'edgefleet.mjs'), '');
  await writeFile(join(release, 'release.json'), JSON.stringify({ version, arch: 'x64' }));
  const archive = join(dir, `${name}.tar.gz`);
  await run('tar', ['-czf', archive, '-C', dir, name]);
  return archive;
}
