/** The agent's HTTP client for the hub, over node:http. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hubHttp } from '../src/hub-http.ts';

const nodeFetch = hubHttp({ idleTimeoutMs: 300 });

let server: Server;
let base: string;
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];

function handle(req: IncomingMessage, res: ServerResponse, body: string): void {
  seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
  if (req.url === '/json') {
    res.writeHead(201, { 'content-type': 'application/json', 'x-two': ['a', 'b'] });
    res.end(JSON.stringify({ echo: body }));
  } else if (req.url === '/big') {
    res.writeHead(206, { 'content-type': 'application/octet-stream' });
    res.end(Buffer.alloc(3 * 1024 * 1024, 7));
  } else if (req.url === '/redirect') {
    res.writeHead(302, { location: '/json' }).end();
  } else if (req.url === '/loop') {
    res.writeHead(307, { location: '/loop' }).end();
  } else if (req.url === '/gone') {
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"NOT_FOUND"}}');
  } else if (req.url === '/stall') {
    res.writeHead(200);
    res.write('partial');
    // …and never ends.
  } else if (req.url === '/trickle') {
    // 8 bytes over ~1.2 s, one every 150 ms: longer than the 300 ms idle timeout in all, never silent that long.
    res.writeHead(200);
    let sent = 0;
    const tick = setInterval(() => {
      res.write('x');
      if (++sent === 8) {
        clearInterval(tick);
        res.end();
      }
    }, 150);
  } else if (req.url === '/cut') {
    res.writeHead(200, { 'content-length': '100' });
    res.write('only some');
    setTimeout(() => res.destroy(), 20);
  } else {
    res.writeHead(304).end();
  }
}

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => handle(req, res, body));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((ok) => server.close(ok));
});

describe('hubHttp', () => {
  it('sends method, headers and a string body, and reads status, headers and JSON', async () => {
    const r = await nodeFetch(`${base}/json`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer s' },
      body: '{"x":"é"}',
    });
    expect(r.status).toBe(201);
    expect(r.ok).toBe(true);
    expect(r.header('X-Two')).toBe('a, b');
    expect(await r.json()).toEqual({ echo: '{"x":"é"}' });
    const last = seen.at(-1);
    expect(last?.method).toBe('POST');
    expect(last?.headers.authorization).toBe('Bearer s');
    expect(last?.headers['content-length']).toBe(String(Buffer.byteLength('{"x":"é"}')));
  });

  it('streams a large body', async () => {
    const r = await nodeFetch(`${base}/big`);
    expect(r.status).toBe(206);
    let n = 0;
    for await (const part of r.body ?? []) {
      expect((part as Buffer).every((b) => b === 7)).toBe(true);
      n += (part as Buffer).byteLength;
    }
    expect(n).toBe(3 * 1024 * 1024);
  });

  it('follows redirects (a POST after 302 becomes a GET) and gives up on a loop', async () => {
    const r = await nodeFetch(`${base}/redirect`, { method: 'POST', body: 'dropped' });
    expect(r.status).toBe(201);
    expect(seen.at(-1)).toMatchObject({ method: 'GET', url: '/json', body: '' });
    await expect(nodeFetch(`${base}/loop`)).rejects.toThrow(/redirects/);
  });

  it('returns error statuses and empty bodies as responses', async () => {
    const gone = await nodeFetch(`${base}/gone`);
    expect(gone.ok).toBe(false);
    expect(gone.status).toBe(404);
    expect(await gone.json()).toEqual({ error: { code: 'NOT_FOUND' } });
    const same = await nodeFetch(`${base}/other`);
    expect(same.status).toBe(304);
    expect(same.body).toBeNull();
  });

  it('rejects when it cannot connect, errors a body the hub goes silent in, and one whose connection drops', async () => {
    await expect(nodeFetch('http://127.0.0.1:1/')).rejects.toThrow();
    const stalled = await nodeFetch(`${base}/stall`);
    await expect(stalled.text()).rejects.toThrow(/no answer from the hub/);
    const cut = await nodeFetch(`${base}/cut`);
    await expect(cut.text()).rejects.toThrow();
  });

  it('keeps a slow body that never stays silent for the idle timeout', async () => {
    const r = await nodeFetch(`${base}/trickle`);
    expect(await r.text()).toBe('x'.repeat(8));
  });
});
