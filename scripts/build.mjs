// Builds what runs outside vitest: the CLI bundle (hub, agent and tools in one file) and the
// browser SDK. Workspace sources are bundled; third-party packages stay external so native
// modules (onnxruntime-node, better-sqlite3, sharp) load from node_modules as usual.
import { readdirSync, readFileSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Every third-party dependency named by any workspace: these stay `import`s in the bundle. */
export function thirdPartyDependencies() {
  const rootPkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const names = new Set();
  for (const ws of rootPkg.workspaces) {
    const pkg = JSON.parse(readFileSync(join(root, ws, 'package.json'), 'utf8'));
    for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
      for (const name of Object.keys(pkg[field] ?? {})) if (!name.startsWith('@edgefleet/')) names.add(name);
    }
  }
  return [...names];
}

/** Build every target; resolves when all are written. */
export async function build({ quiet = false } = {}) {
  const started = Date.now();
  const external = thirdPartyDependencies();
  const builds = [
    esbuild.build({
      // Code splitting: each command loads only what it needs (the agent never loads the hub).
      entryPoints: { edgefleet: join(root, 'packages/cli/src/main.ts') },
      outdir: join(root, 'packages/cli/dist'),
      outExtension: { '.js': '.mjs' },
      chunkNames: 'chunks/[name]-[hash]',
      splitting: true,
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      sourcemap: 'linked',
      external,
      banner: {
        // Bundled ESM still meets CommonJS-style code paths in a few dependencies' helpers.
        js: "import { createRequire as __efCreateRequire } from 'node:module'; const require = __efCreateRequire(import.meta.url);",
      },
      logLevel: 'warning',
    }),
  ];
  builds.push(
    esbuild
      .build({
        // The dashboard: plain files the hub serves; nothing for users to build.
        entryPoints: { app: join(root, 'cloud-hub/dashboard/main.tsx') },
        outdir: join(root, 'cloud-hub/dist/dashboard'),
        bundle: true,
        platform: 'browser',
        format: 'esm',
        target: 'es2022',
        jsx: 'automatic',
        jsxImportSource: 'preact',
        minify: true,
        sourcemap: 'linked',
        logLevel: 'warning',
      })
      .then(() =>
        copyFile(
          join(root, 'cloud-hub/dashboard/index.html'),
          join(root, 'cloud-hub/dist/dashboard/index.html'),
        ),
      ),
  );
  const webEntry = join(root, 'packages/web/src/browser.ts');
  if (readdirSync(join(root, 'packages/web/src')).includes('browser.ts')) {
    builds.push(
      esbuild.build({
        entryPoints: [webEntry],
        outfile: join(root, 'packages/web/dist/edgefleet.js'),
        bundle: true,
        platform: 'browser',
        format: 'esm',
        target: 'es2022',
        sourcemap: 'linked',
        external: ['onnxruntime-web', 'onnxruntime-web/*'],
        logLevel: 'warning',
      }),
    );
  }
  await Promise.all(builds);
  if (!quiet) console.log(`edgefleet built in ${Date.now() - started} ms`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await build();
}
