/** An in-process hub on free ports with a temp data dir, and a small admin API client for it. */
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BenchHub {
  url: string;
  mqttUrl: string;
  adminToken: string;
  hub: Awaited<ReturnType<typeof import('@edgefleet/hub')['startHub']>>;
  api<T>(method: string, path: string, body?: unknown): Promise<T>;
  stop(): Promise<void>;
}

export async function startBenchHub(options: { db?: string; mqttUrl?: string } = {}): Promise<BenchHub> {
  const { startHub } = await import('@edgefleet/hub');
  const pino = (await import('pino')).default;
  const dir = await mkdtemp(join(tmpdir(), 'edgefleet-bench-'));
  const adminToken = 'efa_bench_admin';
  const hub = await startHub({
    port: 0,
    mqttPort: 0,
    host: '127.0.0.1',
    dataDir: dir,
    adminToken,
    logger: pino({ level: process.env.EDGEFLEET_LOG_LEVEL ?? 'warn' }),
    ...(options.db ? { db: options.db } : {}),
    // A fresh replica id per run: Mosquitto keeps sessions of earlier runs.
    ...(options.mqttUrl ? { mqttUrl: options.mqttUrl, replicaId: `bench-${Date.now()}` } : {}),
  });
  // node:http, not fetch: undici gives up on a response after 300 s, and a 1,000-device rollout
  // request may take longer than that; the bench should report how long, not "fetch failed".
  const api = <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const raw = body instanceof Uint8Array;
    const payload = raw ? Buffer.from(body) : body !== undefined ? JSON.stringify(body) : undefined;
    return new Promise<T>((resolve, reject) => {
      const req = request(
        `${hub.url}/api/v1${path}`,
        {
          method,
          headers: {
            authorization: `Bearer ${adminToken}`,
            ...(payload !== undefined && !raw ? { 'content-type': 'application/json' } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if ((res.statusCode ?? 500) >= 300)
              return reject(new Error(`${method} ${path}: ${res.statusCode} ${text.slice(0, 300)}`));
            resolve((text ? JSON.parse(text) : undefined) as T);
          });
        },
      );
      req.on('error', (error) => reject(new Error(`${method} ${path}: ${error.message}`)));
      req.end(payload);
    });
  };
  return {
    url: hub.url,
    mqttUrl: options.mqttUrl ?? `mqtt://127.0.0.1:${hub.mqttPort}`,
    adminToken,
    hub,
    api,
    async stop() {
      await hub.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Whether a TCP service answers (Mosquitto, PostgreSQL): benches skip rows when it does not. */
export async function reachable(url: string, defaultPort: number): Promise<boolean> {
  const { connect } = await import('node:net');
  const u = new URL(url);
  return new Promise((done) => {
    const socket = connect({ host: u.hostname, port: Number(u.port || defaultPort) });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(1500, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

export const MOSQUITTO_URL = process.env.EDGEFLEET_BENCH_MQTT ?? 'mqtt://127.0.0.1:1883';
export const POSTGRES_URL =
  process.env.EDGEFLEET_BENCH_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
