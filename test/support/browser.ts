/**
 * Debian chromium driven by playwright-core: headless, WebGPU through SwiftShader, no network
 * beyond localhost. Screenshots go to test-results/ for review.
 */
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { projectRoot } from './services.ts';

export const CHROMIUM = '/usr/bin/chromium';

export interface BrowserOptions {
  webgpu?: boolean;
}

export async function launchBrowser(options: BrowserOptions = {}): Promise<Browser> {
  const webgpu = options.webgpu ?? true;
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
      ...(webgpu
        ? ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan']
        : ['--disable-webgpu']),
    ],
  });
}

/** A fresh context (own storage), optionally phone-sized. */
export async function newPage(
  browser: Browser,
  options: { phone?: boolean } = {},
): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext(
    options.phone
      ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }
      : { viewport: { width: 1280, height: 900 } },
  );
  const page = await context.newPage();
  return { context, page };
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const dir = join(projectRoot, 'test-results', 'screenshots');
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

export async function tempProfile(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'ef-chromium-'));
}

/** A file for `serveFiles`: bytes, or a path on disk read on each request. */
export type ServedFile = Uint8Array | { path: string };

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.onnx': 'application/octet-stream',
};

/**
 * Serve fixed files (URL path → bytes or disk path) on 127.0.0.1, port 0, for pages under test,
 * e.g. onnxruntime-web's dist files next to a model. Unknown paths get 404. Cross-origin isolation
 * headers let WASM use threads if a page asks for them.
 */
export async function serveFiles(
  files: Record<string, ServedFile>,
): Promise<{ url: string; close(): Promise<void> }> {
  const { createServer } = await import('node:http');
  const { readFile } = await import('node:fs/promises');
  const { extname } = await import('node:path');
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const file = files[path];
    if (!file) {
      res.writeHead(404).end();
      return;
    }
    const send = (body: Uint8Array) =>
      res
        .writeHead(200, {
          'content-type': MIME[extname(path)] ?? 'application/octet-stream',
          'cross-origin-opener-policy': 'same-origin',
          'cross-origin-embedder-policy': 'require-corp',
        })
        .end(body);
    if (file instanceof Uint8Array) send(file);
    else readFile(file.path).then(send, () => res.writeHead(500).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
