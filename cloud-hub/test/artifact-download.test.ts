/**
 * GET /api/v1/artifacts/{sha256} under Node: the bytes are piped from the store straight into the
 * HTTP response. Exact bytes for ranges, HEAD without a body, the status in the request metrics,
 * and a client that leaves mid-download: the hub closes the file and keeps serving.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readlink } from 'node:fs/promises';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub } from './helpers.ts';

/** How many of this process's file descriptors are open on a file named `sha256`. */
async function openFilesNamed(sha256: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd').catch(() => [] as string[])) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target.endsWith(sha256)) n++;
  }
  return n;
}

async function until(check: () => Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

for (const store of ['disk', 'db'] as const) {
  describe(`artifact download (${store} store)`, () => {
    let t: TestHub;
    // Several read chunks (64 KiB for files, 1 MiB rows for the database) so ranges cross them.
    const bytes = randomBytes(2 * 1024 * 1024 + 12_345);
    let sha256: string;
    let url: string;
    let auth: Record<string, string>;

    beforeAll(async () => {
      t = await startTestHub(store === 'db' ? { artifacts: 'db' } : {});
      ({ sha256 } = await t.hub.ctx.artifacts.put(bytes));
      url = `${t.hub.url}/api/v1/artifacts/${sha256}`;
      auth = { authorization: `Bearer ${t.adminToken}` };
    });
    afterAll(() => t.stop());

    it('sends the whole artifact with its length and ETag', async () => {
      const r = await fetch(url, { headers: auth });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-length')).toBe(String(bytes.length));
      expect(r.headers.get('etag')).toBe(`"${sha256}"`);
      expect(r.headers.get('accept-ranges')).toBe('bytes');
      expect(Buffer.from(await r.arrayBuffer()).equals(bytes)).toBe(true);
    });

    it('sends exactly the bytes of a range, a suffix range and an open range', async () => {
      const cases: [string, number, number][] = [
        ['bytes=65530-1048600', 65_530, 1_048_600],
        [`bytes=-1000`, bytes.length - 1000, bytes.length - 1],
        [`bytes=${bytes.length - 7}-`, bytes.length - 7, bytes.length - 1],
        ['bytes=0-0', 0, 0],
      ];
      for (const [header, start, end] of cases) {
        const r = await fetch(url, { headers: { ...auth, range: header } });
        expect(r.status, header).toBe(206);
        expect(r.headers.get('content-range')).toBe(`bytes ${start}-${end}/${bytes.length}`);
        expect(r.headers.get('content-length')).toBe(String(end - start + 1));
        expect(Buffer.from(await r.arrayBuffer()).equals(bytes.subarray(start, end + 1)), header).toBe(true);
      }
      // If-Range with another ETag: the whole artifact.
      const stale = await fetch(url, { headers: { ...auth, range: 'bytes=5-9', 'if-range': '"other"' } });
      expect(stale.status).toBe(200);
      expect((await stale.arrayBuffer()).byteLength).toBe(bytes.length);
      const beyond = await fetch(url, { headers: { ...auth, range: `bytes=${bytes.length}-` } });
      expect(beyond.status).toBe(416);
      expect(beyond.headers.get('content-range')).toBe(`bytes */${bytes.length}`);
    });

    it('answers HEAD with the headers and no body', async () => {
      const whole = await fetch(url, { method: 'HEAD', headers: auth });
      expect(whole.status).toBe(200);
      expect(whole.headers.get('content-length')).toBe(String(bytes.length));
      expect((await whole.arrayBuffer()).byteLength).toBe(0);
      const part = await fetch(url, { method: 'HEAD', headers: { ...auth, range: 'bytes=10-19' } });
      expect(part.status).toBe(206);
      expect(part.headers.get('content-length')).toBe('10');
      expect(await openFilesNamed(sha256)).toBe(0);
    });

    it('keeps auth, the access check and 304 in front of the bytes', async () => {
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(`${t.hub.url}/api/v1/artifacts/${'0'.repeat(64)}`, { headers: auth })).status).toBe(
        404,
      );
      const notModified = await fetch(url, { headers: { ...auth, 'if-none-match': `"${sha256}"` } });
      expect(notModified.status).toBe(304);
    });

    it('counts the status that went out in the request metrics', async () => {
      await (await fetch(url, { headers: { ...auth, range: 'bytes=1-2' } })).arrayBuffer();
      const metrics = await (await fetch(`${t.hub.url}/metrics`)).text();
      expect(metrics).toMatch(/edgefleet_http_requests_total\{method="GET",status="206"\} [1-9]/);
    });
  });
}

describe('artifact download: a client that leaves mid-download', () => {
  let t: TestHub;
  // Bigger than loopback socket buffers, so the hub is still reading the file when the client leaves.
  const bytes = randomBytes(48 * 1024 * 1024);
  let sha256: string;

  beforeAll(async () => {
    t = await startTestHub();
    ({ sha256 } = await t.hub.ctx.artifacts.put(bytes));
  });
  afterAll(() => t.stop());

  it('closes the file, and the hub goes on serving', async () => {
    const { port } = new URL(t.hub.url);
    const received = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: `/api/v1/artifacts/${sha256}`,
          headers: { authorization: `Bearer ${t.adminToken}` },
        },
        (res) => {
          let n = 0;
          res.on('data', (chunk: Buffer) => {
            n += chunk.length;
            // Leave after the first megabyte: the hub has the file open and most of it unsent.
            if (n >= 1024 * 1024) {
              req.destroy();
              resolve(n);
            }
          });
          res.on('error', () => undefined);
        },
      );
      req.on('error', (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ECONNRESET') reject(error);
      });
      req.end();
    });
    expect(received).toBeLessThan(bytes.length);
    await until(async () => (await openFilesNamed(sha256)) === 0, 'the artifact file to be closed');
    // The hub is fine: the same artifact downloads in full.
    const again = await fetch(`${t.hub.url}/api/v1/artifacts/${sha256}`, {
      headers: { authorization: `Bearer ${t.adminToken}` },
    });
    expect(again.status).toBe(200);
    expect(Buffer.from(await again.arrayBuffer()).equals(bytes)).toBe(true);
    expect(await openFilesNamed(sha256)).toBe(0);
  });
});
