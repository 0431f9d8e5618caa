/**
 * `npm run demo`: a hub, three local agents, a sample classifier converted (int8, with a drift
 * reference profile), published and rolled out in stages, and live traffic with a drift episode,
 * so every dashboard page has something to show within a minute.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { type Command, optionalInt, optionalString } from '../command.ts';
import { waitForSignal } from '../signals.ts';

/** One sample's 16 features: uniform(−1, 1), the first tripled while drifting. */
function features(drifting = false): number[] {
  return Array.from({ length: 16 }, (_, i) => (Math.random() * 2 - 1) * (drifting && i === 0 ? 3 : 1));
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run a hub with three local agents, a sample model rolled out, and live traffic',
  usage: 'demo [--port 8080] [--data DIR] [--fresh]',
  options: { port: { type: 'string' }, data: { type: 'string' }, fresh: { type: 'boolean' } },
  async run(ctx) {
    const [{ startHub }, { startAgent }, { mlpModel, convertOnnxFile }, { generateSigningKey }] =
      await Promise.all([
        import('@edgefleet/hub'),
        import('@edgefleet/agent'),
        import('@edgefleet/converters'),
        import('@edgefleet/bundle'),
      ]);
    const dataDir = resolve(optionalString(ctx, 'data') ?? 'edgefleet-demo');
    if (ctx.values.fresh) await rm(dataDir, { recursive: true, force: true });
    const port = optionalInt(ctx, 'port') ?? 8080;
    const adminToken = process.env.EDGEFLEET_ADMIN_TOKEN ?? 'efa_demo_admin_token';
    ctx.progress('starting the hub…');
    // Quiet logs: the demo's own lines are what the reader wants to see.
    const logger = pino({ level: process.env.EDGEFLEET_LOG_LEVEL ?? 'warn' });
    const hub = await startHub({
      port,
      mqttPort: 0,
      dataDir: join(dataDir, 'hub'),
      adminToken,
      logger,
      driftIntervalMs: 5000,
    });
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
          statsWindowMs: 10_000,
          statsWindowCount: 400,
          logger: logger.child({ agent: i + 1 }),
        }),
      );
    }

    // The sample model goes the way a user's does: converted to int8 with calibration data and a
    // drift reference profile, signed with a publisher key the hub trusts, then published.
    ctx.progress('converting a sample classifier (int8, with a drift reference profile)…');
    const labels = ['cat', 'dog', 'bird', 'fish'];
    const work = join(dataDir, 'model');
    await mkdir(work, { recursive: true });
    const reference = Array.from({ length: 2000 }, () => features().join(','));
    await writeFile(join(work, 'reference.csv'), `${reference.join('\n')}\n`);
    await writeFile(join(work, 'labels.txt'), `${labels.join('\n')}\n`);
    const key = await generateSigningKey();
    await call('POST', '/keys', { name: 'demo-publisher', publicKey: key.publicKey });
    for (const [version, seed] of [
      ['1.0.0', 1],
      ['1.1.0', 2],
    ] as const) {
      const input = join(work, `classifier-${version}.onnx`);
      const model = mlpModel({
        inputs: 16,
        hidden: [64, 32],
        outputs: labels.length,
        softmax: true,
        seed,
        batch: 'N',
      });
      await writeFile(input, model);
      const { bundle } = await convertOnnxFile({
        input,
        name: 'demo-classifier',
        version,
        key,
        targets: ['cpu'],
        quantize: 'static',
        calibrationPath: join(work, 'reference.csv'),
        referencePath: join(work, 'reference.csv'),
        labels,
      });
      ctx.progress(`publishing demo-classifier@${version}…`);
      await call('PUT', `/models/demo-classifier/versions/${version}`, bundle.bytes);
    }
    const first = await call<{ id: string }>('POST', '/rollouts', {
      model: 'demo-classifier',
      version: '1.0.0',
      target: { tags: ['demo'] },
    });
    let second: string | undefined;

    // Live traffic: each agent answers a batch of 16 predictions a few times a second; after 20 s a
    // staged rollout of 1.1.0 starts; from 60 s to 150 s the first agent's camera "drifts" (its first
    // feature triples), which the hub flags on the model page and as an alert.
    let running = true;
    const started = Date.now();
    const traffic = (async () => {
      while (running) {
        const elapsed = Date.now() - started;
        await Promise.all(
          agents.map((a, i) => {
            const drifting = i === 0 && elapsed > 60_000 && elapsed < 150_000;
            const data = Array.from({ length: 16 }, () => features(drifting)).flat();
            return fetch(`http://127.0.0.1:${a.port}/v2/models/demo-classifier/infer`, {
              method: 'POST',
              body: JSON.stringify({ inputs: [{ name: 'input', shape: [16, 16], datatype: 'FP32', data }] }),
            }).then(
              (r) => r.arrayBuffer(),
              () => undefined,
            );
          }),
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
        '  what happens the first rollout (1.0.0) goes out now; a staged rollout of 1.1.0 with a latency gate starts after 20 s;',
        '               from 60 s to 150 s demo-pi-1 sees drifted inputs: watch Models → demo-classifier and the alerts',
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
