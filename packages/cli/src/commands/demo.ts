/**
 * `npm run demo`: a hub, three local agents, a sample classifier published and rolled out in
 * stages, and live traffic, so every dashboard page has something to show within a minute.
 */
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { type Command, optionalInt, optionalString } from '../command.ts';
import { waitForSignal } from '../signals.ts';

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run a hub with three local agents, a sample model rolled out, and live traffic',
  usage: 'demo [--port 8080] [--data DIR] [--fresh]',
  options: { port: { type: 'string' }, data: { type: 'string' }, fresh: { type: 'boolean' } },
  async run(ctx) {
    const [{ startHub }, { startAgent }, { mlpModel }] = await Promise.all([
      import('@edgefleet/hub'),
      import('@edgefleet/agent'),
      import('@edgefleet/converters'),
    ]);
    const dataDir = resolve(optionalString(ctx, 'data') ?? 'edgefleet-demo');
    if (ctx.values.fresh) await rm(dataDir, { recursive: true, force: true });
    const port = optionalInt(ctx, 'port') ?? 8080;
    const adminToken = process.env.EDGEFLEET_ADMIN_TOKEN ?? 'efa_demo_admin_token';
    ctx.progress('starting the hub…');
    // Quiet logs: the demo's own lines are what the reader wants to see.
    const logger = pino({ level: process.env.EDGEFLEET_LOG_LEVEL ?? 'warn' });
    const hub = await startHub({ port, mqttPort: 0, dataDir: join(dataDir, 'hub'), adminToken, logger });
    const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
      const raw = body instanceof Uint8Array;
      const response = await fetch(`${hub.url}/api/v1${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminToken}`,
          ...(body !== undefined && !raw ? { 'content-type': 'application/json' } : {}),
        },
        body: raw ? (body as Uint8Array<ArrayBuffer>) : body !== undefined ? JSON.stringify(body) : undefined,
      });
      const json = (await response.json()) as T & { error?: { message: string } };
      if (!response.ok && response.status !== 409)
        throw new Error(`${method} ${path}: ${json.error?.message ?? response.status}`);
      return json;
    };

    ctx.progress('starting three agents…');
    const { token } = await call<{ token: string }>('POST', '/enrollment-tokens', {
      uses: 3,
      tags: ['demo', 'site:lab'],
    });
    const agents = [];
    for (let i = 0; i < 3; i++) {
      agents.push(
        await startAgent({
          dataDir: join(dataDir, `agent-${i + 1}`),
          hub: hub.url,
          enrollToken: token,
          name: `demo-pi-${i + 1}`,
          port: 0,
          telemetryIntervalMs: 2000,
          probationMs: 60_000,
          logger: logger.child({ agent: i + 1 }),
        }),
      );
    }

    ctx.progress('publishing a sample classifier and rolling it out…');
    const labels = ['cat', 'dog', 'bird', 'fish'];
    for (const [version, seed] of [
      ['1.0.0', 1],
      ['1.1.0', 2],
    ] as const) {
      await call(
        'PUT',
        `/models/demo-classifier/versions/${version}`,
        mlpModel({ inputs: 16, hidden: [64, 32], outputs: labels.length, softmax: true, seed }),
      );
    }
    const first = await call<{ id: string }>('POST', '/rollouts', {
      model: 'demo-classifier',
      version: '1.0.0',
      target: { tags: ['demo'] },
    });
    let second: string | undefined;

    // Live traffic: each agent answers a few requests a second; after 20 s a staged rollout of 1.1.0 starts.
    let running = true;
    const started = Date.now();
    const traffic = (async () => {
      while (running) {
        await Promise.all(
          agents.map((a) =>
            fetch(`http://127.0.0.1:${a.port}/v2/models/demo-classifier/infer`, {
              method: 'POST',
              body: JSON.stringify({
                inputs: [
                  {
                    name: 'input',
                    shape: [1, 16],
                    datatype: 'FP32',
                    data: Array.from({ length: 16 }, () => Math.random() * 2 - 1),
                  },
                ],
              }),
            }).then(
              (r) => r.arrayBuffer(),
              () => undefined,
            ),
          ),
        );
        if (!second && Date.now() - started > 20_000) {
          second = (
            await call<{ id: string }>('POST', '/rollouts', {
              model: 'demo-classifier',
              version: '1.1.0',
              target: { tags: ['demo'] },
              batches: ['1', '100%'],
              soakSeconds: 30,
              gates: { latencyP95Ratio: 5 },
            })
          ).id;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();

    ctx.progress('');
    ctx.printJson({
      url: hub.url,
      adminToken,
      agents: agents.map((a) => ({ id: a.deviceId, port: a.port })),
      rollouts: [first.id],
    });
    ctx.print(
      [
        '',
        '  edgefleet demo is running',
        `  dashboard    ${hub.url}/   (sign in with: ${adminToken})`,
        `  agents       ${agents.map((a) => `${a.name} http://127.0.0.1:${a.port}/v2`).join(', ')}`,
        '  what happens the first rollout (1.0.0) goes out now; a staged rollout of 1.1.0 with a latency gate starts after 20 s',
        '  stop with Ctrl-C',
        '',
      ].join('\n'),
    );
    await waitForSignal();
    running = false;
    await traffic;
    for (const a of agents) await a.stop();
    await hub.stop();
    return 0;
  },
};
