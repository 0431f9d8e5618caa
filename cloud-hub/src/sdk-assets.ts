/**
 * Serving the browser SDK: `/sdk/edgefleet.js` (scripts/build.mjs writes it to packages/web/dist),
 * the engines it loads from next to itself (`/sdk/ort/*` from onnxruntime-web's dist,
 * `/sdk/tflite/*` from tfjs-tflite's wasm; see packages/web/src/assets.ts) and the try-it page
 * (`/try`, also at `/sdk/try.html`). A file missing because nothing was built or installed is a
 * 503 saying what to run, not a 404 that looks like a wrong URL.
 */
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, normalize, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import type { Context, Env, Hono } from 'hono';

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
};

/** One served folder, the file whose absence means "not built/installed", and what to do then. */
export interface AssetFolder {
  dir: string | undefined;
  marker: string;
  hint: string;
}

export interface SdkAssets {
  /** packages/web/dist: edgefleet.js and its source map. */
  bundle: AssetFolder;
  /** packages/web/static: try.html. */
  pages: AssetFolder;
  ort: AssetFolder;
  tflite: AssetFolder;
}

/** The root of the package that `entry` (a resolved file inside it) belongs to. */
function packageRoot(entry: string, name: string): string | undefined {
  for (let dir = dirname(entry); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && JSON.parse(readFileSync(manifest, 'utf8')).name === name) return dir;
  }
  return undefined;
}

function resolvePackage(from: string, name: string): string | undefined {
  try {
    return packageRoot(createRequire(from).resolve(name), name);
  } catch {
    return undefined; // not installed: its routes answer 503 with the hint
  }
}

/** Where the SDK and its engines are, found through the packages (source tree and CLI bundle alike). */
export function sdkAssets(): SdkAssets {
  const web = resolvePackage(import.meta.url, '@edgefleet/web');
  // The engines are the SDK's own dependencies: resolve them from its package, not the hub's.
  const fromWeb = web ? join(web, 'package.json') : import.meta.url;
  const ort = resolvePackage(fromWeb, 'onnxruntime-web');
  const tflite = resolvePackage(fromWeb, '@tensorflow/tfjs-tflite');
  const build = 'the browser SDK is not built: run `npm run build` in the edgefleet project root';
  const install = (pkg: string) => `${pkg} is not installed next to the browser SDK: run \`npm install\``;
  return {
    bundle: { dir: web && join(web, 'dist'), marker: 'edgefleet.js', hint: build },
    pages: { dir: web && join(web, 'static'), marker: 'try.html', hint: install('@edgefleet/web') },
    ort: { dir: ort && join(ort, 'dist'), marker: 'ort.wasm.min.mjs', hint: install('onnxruntime-web') },
    tflite: {
      dir: tflite && join(tflite, 'wasm'),
      marker: 'tflite_web_api_client.js',
      hint: install('@tensorflow/tfjs-tflite'),
    },
  };
}

function unavailable(c: Context, folder: AssetFolder): Response {
  return c.json({ error: { code: 'UNAVAILABLE', message: folder.hint } }, 503);
}

/** `relative` inside `folder`, or undefined when the path tries to leave it. */
function fileIn(folder: AssetFolder & { dir: string }, relative: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(relative);
  } catch {
    return undefined;
  }
  const root = resolve(folder.dir);
  const file = resolve(root, normalize(decoded).replace(/^([/\\])+/, ''));
  return file.startsWith(root + sep) ? file : undefined;
}

/**
 * Send a file with a validator: the engines are megabytes of wasm, so browsers revalidate
 * (`no-cache`) and get a 304 instead of the bytes again.
 */
async function sendFile(
  c: Context,
  folder: AssetFolder,
  relative: string,
  headers: Record<string, string>,
): Promise<Response> {
  if (!folder.dir || !existsSync(join(folder.dir, folder.marker))) return unavailable(c, folder);
  const file = fileIn({ ...folder, dir: folder.dir }, relative);
  const info = file ? await stat(file).catch(() => undefined) : undefined;
  if (!file || !info?.isFile()) return c.notFound();
  const etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
  const common = { ETag: etag, 'Cache-Control': 'no-cache', ...headers };
  if (c.req.header('if-none-match') === etag) return c.body(null, 304, common);
  const ext = file.slice(file.lastIndexOf('.'));
  const body = Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>;
  return c.body(body, 200, {
    ...common,
    'Content-Type': types[ext] ?? 'application/octet-stream',
    'Content-Length': String(info.size),
  });
}

// Pages on other origins import the SDK as a module and it fetches the engines: both are CORS
// requests. These files are public code with no credentials involved, so any origin may load them.
const crossOrigin = {
  'Access-Control-Allow-Origin': '*',
  'Cross-Origin-Resource-Policy': 'cross-origin',
};

/** Register the SDK routes; call before the dashboard's catch-all. */
export function serveSdk<E extends Env>(app: Hono<E>, assets: SdkAssets = sdkAssets()): void {
  const under = (prefix: string, folder: AssetFolder) =>
    app.get(`${prefix}*`, (c) => sendFile(c, folder, c.req.path.slice(prefix.length), crossOrigin));
  under('/sdk/ort/', assets.ort);
  under('/sdk/tflite/', assets.tflite);
  app.get('/sdk/try.html', (c) => sendFile(c, assets.pages, 'try.html', {}));
  under('/sdk/', assets.bundle);
  // The page imports './edgefleet.js'; at /try that would be /edgefleet.js, so point its base at sdk/.
  app.get('/try', async (c) => {
    const dir = assets.pages.dir;
    const html = dir ? await readFile(join(dir, 'try.html'), 'utf8').catch(() => undefined) : undefined;
    if (!html) return unavailable(c, assets.pages);
    if (!assets.bundle.dir || !existsSync(join(assets.bundle.dir, assets.bundle.marker)))
      return unavailable(c, assets.bundle);
    return c.html(html.replace(/<head>/i, '<head>\n  <base href="sdk/">'), 200, {
      'Cache-Control': 'no-cache',
    });
  });
}
