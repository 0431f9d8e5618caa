/**
 * Artifact download: the hub's GET /api/v1/artifacts/{sha256} (auth, access check, stream from the
 * artifact store) against a plain Node static file server sending the same file from disk.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBenchHub } from './hub.ts';
import { type BenchModule, median, row } from './types.ts';

/** Download `url` fully; resolves with MB/s (2^20 bytes). */
async function throughput(url: string, headers: Record<string, string>, size: number): Promise<number> {
  const t0 = performance.now();
  const response = await fetch(url, { headers });
  if (!response.ok || !response.body) throw new Error(`GET ${url}: ${response.status}`);
  let bytes = 0;
  const reader = response.body.getReader();
  for (let part = await reader.read(); !part.done; part = await reader.read()) bytes += part.value.byteLength;
  const seconds = (performance.now() - t0) / 1000;
  if (bytes !== size) throw new Error(`GET ${url}: got ${bytes} bytes, expected ${size}`);
  return bytes / 2 ** 20 / seconds;
}

export const downloadBench: BenchModule = {
  name: 'download',
  title: 'Artifact download vs a static file server',
  async run(ctx) {
    const sizeMb = ctx.quick ? 16 : 128;
    const rounds = ctx.quick ? 3 : 7;
    const size = sizeMb * 2 ** 20;
    const dir = await mkdtemp(join(tmpdir(), 'edgefleet-bench-dl-'));
    const file = join(dir, 'artifact.bin');
    const bytes = randomBytes(size);
    await writeFile(file, bytes);
    const hub = await startBenchHub();
    const plain = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((ok) => plain.listen(0, '127.0.0.1', ok));
    try {
      const { sha256 } = await hub.hub.ctx.artifacts.put(bytes);
      const hubUrl = `${hub.url}/api/v1/artifacts/${sha256}`;
      const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}/artifact.bin`;
      const auth = { authorization: `Bearer ${hub.adminToken}` };
      // Alternate the two so page cache and CPU noise hit both alike.
      const hubRates: number[] = [];
      const plainRates: number[] = [];
      await throughput(hubUrl, auth, size);
      await throughput(plainUrl, {}, size);
      for (let i = 0; i < rounds; i++) {
        ctx.progress(`round ${i + 1}/${rounds} (${sizeMb} MB each)`);
        hubRates.push(await throughput(hubUrl, auth, size));
        plainRates.push(await throughput(plainUrl, {}, size));
      }
      const hubRate = median(hubRates);
      const plainRate = median(plainRates);
      return {
        name: 'download',
        title: this.title,
        rows: [
          row('hub artifact download', hubRate, 'MB/s', {
            baseline: plainRate,
            target: '≥ 0.80× static server',
            met: hubRate >= 0.8 * plainRate,
          }),
        ],
        skipped: [],
        notes: [
          `${sizeMb} MB random file, median of ${rounds} alternating downloads over loopback with fetch; hub: disk artifact store, admin token; static server: http.createServer + fs.createReadStream.`,
        ],
      };
    } finally {
      await new Promise((ok) => plain.close(ok));
      await hub.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
};
