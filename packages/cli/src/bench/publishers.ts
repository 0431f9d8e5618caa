/**
 * Simulated devices publishing from a worker thread, so the publishers' CPU is not the measured
 * process's: with hub, broker and 100 mqtt.js clients on one event loop, the clients took about as
 * much CPU as the hub, and the figure measured the bench as much as the ingest path.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

export interface PublisherSpec {
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  topic: string;
}

export interface Publishers {
  /** Publish `perClient` messages from every client (at most `inFlight` unacknowledged each). */
  publish(perClient: number, inFlight: number): Promise<void>;
  close(): Promise<void>;
}

// CommonJS, evaluated in the worker: mqtt.js is loaded from the path the parent resolved.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const mqtt = require(workerData.mqttPath);
function sample(seq) {
  return JSON.stringify({ samples: [{
    seq, ts: new Date().toISOString(), cpu_load_pct: 20 + (seq % 30), mem_used_mb: 400,
    mem_total_mb: 4000, rss_mb: 70, disk_free_mb: 20000, disk_total_mb: 30000,
    temp_c: 45 + (seq % 10), uptime_s: seq * 10,
    inference: { requests: 100, errors: 0, latency_p50_ms: 3.1, latency_p95_ms: 5.2 },
  }] });
}
async function pool(items, limit, work) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) { const i = next++; await work(items[i], i); }
  }));
}
const clients = [];
const specs = workerData.specs;
(async () => {
  await pool(specs, 50, async (s, i) => {
    clients[i] = await mqtt.connectAsync(s.url, {
      clientId: s.clientId, username: s.username, password: s.password,
      clean: true, reconnectPeriod: 1000, keepalive: 60,
    });
  });
  parentPort.postMessage({ type: 'connected' });
})().catch((e) => parentPort.postMessage({ type: 'error', message: String(e && e.message || e) }));
parentPort.on('message', async (m) => {
  try {
    if (m.type === 'publish') {
      await Promise.all(clients.map(async (client, i) => {
        let next = 1;
        await Promise.all(Array.from({ length: m.inFlight }, async () => {
          while (next <= m.perClient) {
            const seq = next++;
            await client.publishAsync(specs[i].topic, sample(seq), { qos: 1 });
          }
        }));
      }));
      parentPort.postMessage({ type: 'published' });
    } else if (m.type === 'close') {
      await pool(clients, 50, (c) => c.endAsync());
      parentPort.postMessage({ type: 'closed' });
    }
  } catch (e) {
    parentPort.postMessage({ type: 'error', message: String(e && e.message || e) });
  }
});
`;

type WorkerReply = { type: 'connected' | 'published' | 'closed' } | { type: 'error'; message: string };

/** Connects every client in a worker thread; resolves once all are connected. */
export async function startPublishers(specs: PublisherSpec[]): Promise<Publishers> {
  const mqttPath = createRequire(import.meta.url).resolve('mqtt');
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { mqttPath, specs } });
  const next = (expected: WorkerReply['type']) =>
    new Promise<void>((resolve, reject) => {
      const onMessage = (reply: WorkerReply) => {
        worker.off('message', onMessage);
        worker.off('error', reject);
        if (reply.type === 'error') reject(new Error(`publisher worker: ${reply.message}`));
        else if (reply.type !== expected)
          reject(new Error(`publisher worker: ${reply.type}, not ${expected}`));
        else resolve();
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
    });
  try {
    await next('connected');
  } catch (error) {
    await worker.terminate();
    throw error;
  }
  return {
    async publish(perClient, inFlight) {
      const done = next('published');
      worker.postMessage({ type: 'publish', perClient, inFlight });
      await done;
    },
    async close() {
      const done = next('closed');
      worker.postMessage({ type: 'close' });
      await done.finally(() => worker.terminate());
    },
  };
}
