/** Serving the dashboard: the esbuild output in cloud-hub/dist/dashboard, built at install time. */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, normalize } from 'node:path';
import type { Hono } from 'hono';

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.wasm': 'application/wasm',
  '.mjs': 'text/javascript; charset=utf-8',
};

/** Directory of the built dashboard (found through the package, so it works from source and from the bundle). */
export function dashboardDir(): string {
  const pkg = createRequire(import.meta.url).resolve('@edgefleet/hub/package.json');
  return join(dirname(pkg), 'dist', 'dashboard');
}

/** Serve files under `root` at `prefix`; paths are normalised and may not leave `root`. */
export function serveDirectory(
  app: Hono<never>,
  prefix: string,
  root: string,
  options: { fallback?: string; cache?: string } = {},
): void {
  app.get(`${prefix}*`, async (c) => {
    const relative = normalize(
      decodeURIComponent(c.req.path.slice(prefix.length)) || options.fallback || 'index.html',
    ).replace(/^(\.\.(\/|\\|$))+/, '');
    const file = join(root, relative);
    if (!file.startsWith(root)) return c.notFound();
    try {
      const body = await readFile(file);
      const ext = relative.slice(relative.lastIndexOf('.'));
      return c.body(body, 200, {
        'Content-Type': types[ext] ?? 'application/octet-stream',
        'Cache-Control': options.cache ?? 'no-cache',
      });
    } catch {
      if (options.fallback) {
        const body = await readFile(join(root, options.fallback)).catch(() => undefined);
        if (body)
          return c.body(body, 200, { 'Content-Type': types['.html'] as string, 'Cache-Control': 'no-cache' });
      }
      return c.notFound();
    }
  });
}
