/**
 * Builds one agent release directory for an architecture: the agent as a single esbuild bundle
 * (every pure-JS dependency inside), the native modules for that arch only, and a Node 20 binary.
 *
 *   release/
 *     edgefleet.mjs        the `edgefleet agent` command, bundled
 *     bin/node             Node for the arch (npm package node-linux-<arch>)
 *     node_modules/        onnxruntime-node (this arch's binaries), sharp + @img prebuilts, and
 *                          tfjs-tflite-node (binding + TFLite C library) with coral-tflite-delegate
 *                          when a binding for this arch is built or can be cross-built
 *     release.json         versions and arch; read by install.sh and the self-updater
 */
import { chmod, copyFile, cp, mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FlashError } from './errors.ts';
import {
  buildTfliteBinding,
  elfMachine,
  prepareRuntime,
  runtimeDir,
  runtimeReady,
  TFLITE_CC_DEPS,
} from './prepare.mjs';

export type Arch = 'arm64' | 'x64';

/** Packages loaded natively at run time; everything else is bundled. */
const EXTERNAL = [
  'onnxruntime-node',
  'sharp',
  'tfjs-tflite-node',
  'coral-tflite-delegate',
  // ws' optional accelerators: absent is fine, it falls back to JS.
  'bufferutil',
  'utf-8-validate',
];

export interface ReleaseInfo {
  name: 'edgefleet-agent';
  version: string;
  arch: Arch;
  platform: 'linux';
  node: string;
  onnxruntime: string;
  sharp: string;
  /** tfjs-tflite-node's version when its binding for this arch is in the package, else null. */
  tflite: string | null;
  builtAt: string;
}

export interface BuildReleaseOptions {
  arch: Arch;
  /** The version stamped into the bundle (what the agent reports) and release.json. */
  version: string;
  /** The project checkout (has node_modules and the sources). */
  root: string;
  /** Where to write the release directory (must not exist or will be replaced). */
  dir: string;
  /** Install the arch's runtime from the npm registry when it is missing (default false: fail instead). */
  prepare?: boolean;
  /** Told what the package goes without (e.g. TFLite when its binding cannot be built for the arch). */
  onWarning?: (message: string) => void;
}

async function pkgVersion(dir: string): Promise<string> {
  return (JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Copy a package directory, keeping only `include` (top-level names) when given. */
async function copyPackage(from: string, to: string, include?: string[]): Promise<void> {
  await mkdir(to, { recursive: true });
  const names = include ?? (await readdir(from));
  for (const name of names) {
    const src = join(from, name);
    const exists = await stat(src).catch(() => undefined);
    if (!exists) continue;
    await cp(src, join(to, name), { recursive: true, dereference: true });
  }
}

/**
 * The TFLite backends (agent/src/runtime/tflite.ts): the agent resolves
 * `tfjs-tflite-node/package.json` and `require`s build/Release/node_tflite_binding.node by path
 * (never the package's JS entry point, whose dependencies it would otherwise need), and the binding
 * finds libtensorflowlite_c.so and libexternal_delegate_obj.so through its RUNPATH,
 * $ORIGIN/../../cc_deps/linux_<arch>. The Edge TPU backend also `require`s coral-tflite-delegate
 * (plain JS, no dependencies). The binding is the project's when `npm install` built it for this
 * arch, else one cross-built for it. Returns the version copied, or the reason there is none (the
 * agent then reports TFLite unavailable).
 */
async function copyTflite(
  root: string,
  nm: string,
  arch: Arch,
): Promise<{ version?: string; reason?: string }> {
  const from = join(root, 'node_modules/tfjs-tflite-node');
  const BINDING = 'build/Release/node_tflite_binding.node';
  let binding: string | undefined = join(from, BINDING);
  if (elfMachine(binding) !== arch) {
    const built = buildTfliteBinding(arch, { quiet: true, root });
    if (!built.path) return { reason: built.reason };
    binding = built.path;
  }
  const to = join(nm, 'tfjs-tflite-node');
  await copyPackage(from, to, ['package.json', 'README.md']);
  await mkdir(join(to, 'build/Release'), { recursive: true });
  await copyFile(binding, join(to, BINDING));
  const libs = `cc_deps/${TFLITE_CC_DEPS[arch]}`;
  await cp(join(from, libs), join(to, libs), { recursive: true, dereference: true });
  await copyPackage(join(root, 'node_modules/coral-tflite-delegate'), join(nm, 'coral-tflite-delegate'), [
    'package.json',
    'README.md',
    'dist/index.js',
  ]);
  return { version: await pkgVersion(from) };
}

/**
 * Bundle the agent command: the CLI's own entry point with only the `agent` command listed, and
 * `version` as EDGEFLEET_VERSION (so a self-updated agent reports the release it runs).
 */
async function bundleAgent(root: string, outfile: string, version: string): Promise<void> {
  // A variable specifier keeps the CLI bundle from trying to bundle esbuild itself.
  const esbuildName = 'esbuild';
  const esbuild = (await import(esbuildName)) as typeof import('esbuild');
  const deviceCommands = join(root, 'scripts/flash/device-commands.ts');
  await esbuild.build({
    entryPoints: [join(root, 'packages/cli/src/main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: EXTERNAL,
    legalComments: 'linked',
    logLevel: 'error',
    banner: {
      js: "import { createRequire as __efCreateRequire } from 'node:module'; const require = __efCreateRequire(import.meta.url);",
    },
    plugins: [
      {
        name: 'edgefleet-device-commands',
        setup(build) {
          build.onResolve({ filter: /commands\/index\.ts$/ }, (args) =>
            args.importer.endsWith(join('packages/cli/src/main.ts')) ? { path: deviceCommands } : undefined,
          );
          build.onLoad({ filter: /packages\/protocol\/src\/version\.ts$/ }, () => ({
            contents: `export const EDGEFLEET_VERSION = ${JSON.stringify(version)};\n`,
            loader: 'ts',
          }));
        },
      },
    ],
  });
}

/** Build the release directory for `arch`; returns what went in. */
export async function buildRelease(o: BuildReleaseOptions): Promise<ReleaseInfo> {
  if (!runtimeReady(o.arch, o.root)) {
    if (!o.prepare)
      throw new FlashError(
        'FLASH_RUNTIME_MISSING',
        `the linux-${o.arch} runtime (Node binary, sharp prebuilts) is not installed: run \`node scripts/flash/prepare.mjs ${o.arch}\` once with access to the npm registry`,
      );
    prepareRuntime(o.arch, { quiet: true, root: o.root });
  }
  const runtime = join(runtimeDir(o.arch, o.root), 'node_modules');
  const modules = join(o.root, 'node_modules');
  await rm(o.dir, { recursive: true, force: true });
  await mkdir(join(o.dir, 'bin'), { recursive: true });
  const nm = join(o.dir, 'node_modules');

  await bundleAgent(o.root, join(o.dir, 'edgefleet.mjs'), o.version);

  // onnxruntime-node: its JS, and the binaries of this arch only (the package carries every platform).
  const ort = join(modules, 'onnxruntime-node');
  await copyPackage(ort, join(nm, 'onnxruntime-node'), [
    'package.json',
    'LICENSE',
    'README.md',
    'dist',
    'lib',
  ]);
  await cp(join(ort, 'bin/napi-v6/linux', o.arch), join(nm, 'onnxruntime-node/bin/napi-v6/linux', o.arch), {
    recursive: true,
  });
  await copyPackage(join(modules, 'onnxruntime-common'), join(nm, 'onnxruntime-common'));
  // sharp: platform-neutral JS plus its small deps, and the arch's prebuilt binding and libvips.
  await copyPackage(join(modules, 'sharp'), join(nm, 'sharp'), ['package.json', 'LICENSE', 'dist', 'lib']);
  for (const dep of ['@img/colour', 'detect-libc', 'semver'])
    await copyPackage(join(modules, dep), join(nm, dep));
  for (const dep of [`@img/sharp-linux-${o.arch}`, `@img/sharp-libvips-linux-${o.arch}`])
    await copyPackage(join(runtime, dep), join(nm, dep));
  // TFLite (CPU and Edge TPU delegate): the binding, if built for this arch, and TFLite's C library.
  const tflite = await copyTflite(o.root, nm, o.arch);
  if (tflite.reason)
    o.onWarning?.(
      `no TFLite in the linux-${o.arch} package, so the device gets CPU ONNX artifacts only (no .tflite, no Edge TPU): ${tflite.reason}`,
    );
  // Node itself.
  const nodePkg = join(runtime, `node-linux-${o.arch}`);
  await copyFile(join(nodePkg, 'bin/node'), join(o.dir, 'bin/node'));
  await chmod(join(o.dir, 'bin/node'), 0o755);
  await copyFile(join(nodePkg, 'LICENSE'), join(o.dir, 'bin/NODE-LICENSE')).catch(() => undefined);

  const info: ReleaseInfo = {
    name: 'edgefleet-agent',
    version: o.version,
    arch: o.arch,
    platform: 'linux',
    node: await pkgVersion(nodePkg),
    onnxruntime: await pkgVersion(ort),
    sharp: await pkgVersion(join(modules, 'sharp')),
    tflite: tflite.version ?? null,
    builtAt: new Date().toISOString(),
  };
  await writeFile(join(o.dir, 'release.json'), `${JSON.stringify(info, null, 2)}\n`);
  return info;
}
