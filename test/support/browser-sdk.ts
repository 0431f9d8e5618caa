/**
 * A local origin for browser-SDK tests, laid out the way the hub serves the SDK: /sdk/edgefleet.js
 * (the built bundle), /sdk/ort/* (onnxruntime-web's dist), /sdk/tflite/* (tfjs-tflite's wasm), a
 * blank page at /, and /api/* forwarded to a real hub so the page talks to it same-origin.
 * Every request is logged (to prove cache hits), and `tamper` can rewrite artifact bytes in flight
 * (to prove hash checks). Listens on 127.0.0.1, port 0.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import type { Page } from 'playwright-core';
import { projectRoot } from './services.ts';

export const SDK_BUNDLE = join(projectRoot, 'packages/web/dist/edgefleet.js');
const folders: Record<string, string> = {
  '/sdk/ort/': join(projectRoot, 'node_modules/onnxruntime-web/dist'),
  '/sdk/tflite/': join(projectRoot, 'node_modules/@tensorflow/tfjs-tflite/wasm'),
  '/sdk/': join(projectRoot, 'packages/web/dist'),
};
// Pages the hub serves next to the SDK (packages/web/static), e.g. /sdk/try.html.
const STATIC = join(projectRoot, 'packages/web/static');
const types: Record<string, string> = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.map': 'application/json',
  '.html': 'text/html; charset=utf-8',
};

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>edgefleet SDK test</title>
<style>body{font:14px system-ui;margin:16px}pre{background:#f4f4f4;padding:8px;white-space:pre-wrap}</style>
<link rel="icon" href="data:,">
<script type="module">import * as edgefleet from '/sdk/edgefleet.js'; window.edgefleet = edgefleet; document.body.dataset.ready = '1';</script>
</head><body><h1 id="title">edgefleet browser SDK</h1><pre id="out">waiting…</pre></body></html>`;

export interface SdkServer {
  url: string;
  /** Paths requested so far (method + path). */
  requests: string[];
  /** Rewrite the body of an /api/ response (return undefined to pass it through). */
  tamper: ((path: string, body: Uint8Array) => Uint8Array | undefined) | undefined;
  close(): Promise<void>;
}

/** Serve the SDK and its engines, forwarding /api/ to `hubUrl` when given. */
export async function startSdkServer(options: { hubUrl?: string } = {}): Promise<SdkServer> {
  if (!existsSync(SDK_BUNDLE)) throw new Error(`${SDK_BUNDLE} is missing: run node scripts/build.mjs`);
  const state: SdkServer = {
    url: '',
    requests: [],
    tamper: undefined,
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    state.requests.push(`${req.method} ${path}`);
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': types['.html'] as string });
      res.end(PAGE);
      return;
    }
    if (path.startsWith('/api/') && options.hubUrl) return forward(req, res, path);
    const prefix = Object.keys(folders).find((p) => path.startsWith(p));
    const rel = prefix ? normalize(path.slice(prefix.length)) : '';
    if (!prefix || rel.startsWith('..') || rel.includes('/..')) {
      res.writeHead(404).end();
      return;
    }
    let file = join(folders[prefix] as string, rel);
    if (prefix === '/sdk/' && existsSync(join(STATIC, rel))) file = join(STATIC, rel);
    const bytes = await readFile(file).catch(() => undefined);
    if (!bytes) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': types[extname(file)] ?? 'application/octet-stream',
      'content-length': String(bytes.byteLength),
    });
    res.end(bytes);
  }
  async function forward(req: IncomingMessage, res: ServerResponse, path: string) {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'content-type', 'range', 'if-none-match']) {
      const v = req.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    const upstream = await fetch(`${options.hubUrl}${req.url}`, {
      method: req.method ?? 'GET',
      headers,
      ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
    });
    let body: Uint8Array = new Uint8Array(await upstream.arrayBuffer());
    body = state.tamper?.(path, body) ?? body;
    const out: Record<string, string> = { 'content-length': String(body.byteLength) };
    for (const name of ['content-type', 'etag', 'cache-control']) {
      const v = upstream.headers.get(name);
      if (v) out[name] = v;
    }
    res.writeHead(upstream.status, out);
    res.end(body);
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return state;
}

/** What a page reports back after loading a model through the SDK and predicting. */
export interface PageResult {
  ok: boolean;
  error?: { code: string; message: string; details?: unknown };
  load_ms?: number;
  predict_ms?: number[];
  /** `backend` right after load, and after the predictions (a first-run fallback changes it). */
  backendAtLoad?: BackendSummary;
  backend?: BackendSummary;
  reporting?: { enabled: boolean; reason?: string };
  outputs?: Record<string, { shape: number[]; data: number[] }>[];
}

export interface BackendSummary {
  engine: string;
  executionProvider: string;
  profile: string;
  artifact: { file: string; precision: string; sha256: string };
  reason: string;
  cache: string;
  probe: string;
  fallbacks: {
    file: string;
    executionProvider: string;
    stage: string;
    error: { code: string; message: string };
  }[];
  skipped: { file: string; reason: string }[];
  notes: string[];
  webgpu: {
    available: boolean;
    features: string[];
    reason?: string;
    adapter?: { isFallbackAdapter: boolean };
  };
  timings: Record<string, number>;
}

/**
 * In a page served by `startSdkServer`: `edgefleet.load({hub: <page origin>, ...options})`, then
 * `predict` each input in turn; the result is also printed on the page for the screenshot.
 */
export async function loadAndPredict(
  page: Page,
  title: string,
  options: Record<string, unknown>,
  inputs: unknown[],
): Promise<PageResult> {
  await page.waitForSelector('body[data-ready]');
  return page.evaluate(
    async ({ title, options, inputs }) => {
      // biome-ignore lint/suspicious/noExplicitAny: the SDK's global on the test page
      const sdk = (window as any).edgefleet;
      const out = document.getElementById('out') as HTMLElement;
      (document.getElementById('title') as HTMLElement).textContent = title;
      const summary = (b: Record<string, unknown>) => JSON.parse(JSON.stringify(b));
      try {
        const t0 = performance.now();
        const model = await sdk.load({ ...options, hub: location.origin });
        const load_ms = performance.now() - t0;
        const backendAtLoad = summary(model.backend);
        const outputs: Record<string, { shape: number[]; data: number[] }>[] = [];
        const predict_ms: number[] = [];
        for (const input of inputs) {
          const t = performance.now();
          const result = await model.predict(input);
          predict_ms.push(performance.now() - t);
          const plain: Record<string, { shape: number[]; data: number[] }> = {};
          for (const [k, v] of Object.entries(
            result as Record<string, { shape: number[]; data: ArrayLike<number> }>,
          ))
            plain[k] = { shape: v.shape, data: Array.from(v.data) };
          outputs.push(plain);
        }
        const backend = summary(model.backend);
        const reporting = { enabled: model.reporting.enabled, reason: model.reporting.reason };
        await model.dispose();
        const first = outputs[0]
          ? Object.entries(outputs[0]).map(
              ([k, v]) =>
                `${k} [${v.shape}]: ${v.data
                  .slice(0, 8)
                  .map((x) => x.toFixed(5))
                  .join(', ')}${v.data.length > 8 ? ', …' : ''}`,
            )
          : [];
        out.textContent = [
          `${backend.engine} on ${backend.executionProvider} (${backend.profile})`,
          `artifact: ${backend.artifact.file} (${backend.artifact.precision}), cache: ${backend.cache}, probe: ${backend.probe}`,
          `why: ${backend.reason}`,
          ...backend.notes.map((n: string) => `note: ${n}`),
          ...backend.fallbacks.map(
            (f: { file: string; executionProvider: string; stage: string; error: { message: string } }) =>
              `fell back from ${f.file} on ${f.executionProvider} at ${f.stage}: ${f.error.message}`,
          ),
          ...backend.skipped.map((s: { file: string; reason: string }) => `skipped ${s.file}: ${s.reason}`),
          `load ${load_ms.toFixed(0)} ms; predict ${predict_ms.map((x) => x.toFixed(1)).join(', ')} ms`,
          `reporting: ${reporting.enabled ? 'on' : `off (${reporting.reason})`}`,
          ...first,
        ].join('\n');
        return { ok: true, load_ms, predict_ms, backendAtLoad, backend, reporting, outputs };
      } catch (e) {
        const error = e as { code?: string; message?: string; details?: unknown };
        out.textContent = `error ${error.code ?? ''}: ${error.message ?? String(e)}`;
        return {
          ok: false,
          error: {
            code: error.code ?? 'Error',
            message: error.message ?? String(e),
            details: JSON.parse(JSON.stringify(error.details ?? null)),
          },
        };
      }
    },
    { title, options, inputs },
  );
}
