import { readFile } from 'node:fs/promises';
import { type Command, optionalInt, optionalString, UsageError } from '../command.ts';
import { waitForSignal } from '../signals.ts';

export const hubCommand: Command = {
  name: 'hub',
  summary: 'Run the hub: API, dashboard, embedded MQTT broker, SQLite and local artifacts by default',
  usage:
    'hub [--port 8080] [--host 0.0.0.0] [--data DIR] [--mqtt-port 1883 | --mqtt-url URL [--mqtt-shared-group G] [--mqtt-inflight 100] [--mqtt-dynsec] [--mqtt-ws-port P] [--tls-cert F --tls-key F]] [--db URL] [--artifacts db|DIR] [--replica-id ID] [--advertised-host H] [--webhook URL]… [--drift-interval SECONDS]   (EDGEFLEET_WEBHOOK_SECRET signs webhook bodies)',
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    data: { type: 'string' },
    'mqtt-port': { type: 'string' },
    'mqtt-url': { type: 'string' },
    'mqtt-shared-group': { type: 'string' },
    'mqtt-dynsec': { type: 'boolean' },
    'mqtt-inflight': { type: 'string' },
    'mqtt-ws-port': { type: 'string' },
    artifacts: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'advertised-host': { type: 'string' },
    db: { type: 'string' },
    'replica-id': { type: 'string' },
    webhook: { type: 'string', multiple: true },
    'drift-interval': { type: 'string' },
  },
  async run(ctx) {
    const mqttUrl = optionalString(ctx, 'mqtt-url');
    const mqttSharedGroup = optionalString(ctx, 'mqtt-shared-group');
    const db = optionalString(ctx, 'db');
    const host = optionalString(ctx, 'host');
    const advertisedHost = optionalString(ctx, 'advertised-host');
    const replicaId = optionalString(ctx, 'replica-id');
    const [certFile, keyFile] = [optionalString(ctx, 'tls-cert'), optionalString(ctx, 'tls-key')];
    if ((certFile === undefined) !== (keyFile === undefined))
      throw new UsageError('--tls-cert and --tls-key go together');
    const tls =
      certFile && keyFile ? { cert: await readFile(certFile), key: await readFile(keyFile) } : undefined;
    const wsPort = optionalInt(ctx, 'mqtt-ws-port');
    const inflight = optionalInt(ctx, 'mqtt-inflight');
    if (inflight !== undefined && (inflight < 1 || inflight > 65_535))
      throw new UsageError('--mqtt-inflight takes 1 to 65535');
    const webhooks = (ctx.values.webhook as string[] | undefined) ?? [];
    for (const url of webhooks)
      if (!/^https?:\/\//.test(url)) throw new UsageError(`--webhook needs an http(s) URL, got "${url}"`);
    const driftInterval = optionalInt(ctx, 'drift-interval');
    const { startHub } = await import('@edgefleet/hub');
    const hub = await startHub({
      port: optionalInt(ctx, 'port') ?? 8080,
      mqttPort: optionalInt(ctx, 'mqtt-port') ?? 1883,
      dataDir: optionalString(ctx, 'data') ?? 'edgefleet-data',
      ...(host ? { host } : {}),
      ...(mqttUrl ? { mqttUrl } : {}),
      ...(mqttSharedGroup ? { mqttSharedGroup } : {}),
      ...(ctx.values['mqtt-dynsec'] ? { mqttDynsec: true } : {}),
      ...(inflight !== undefined ? { mqttInflight: inflight } : {}),
      ...(advertisedHost ? { advertisedHost } : {}),
      ...(db ? { db } : {}),
      ...(replicaId ? { replicaId } : {}),
      ...(tls ? { tls } : {}),
      ...(wsPort !== undefined ? { mqttWsPort: wsPort } : {}),
      ...(webhooks.length ? { webhooks } : {}),
      ...(process.env.EDGEFLEET_WEBHOOK_SECRET
        ? { webhookSecret: process.env.EDGEFLEET_WEBHOOK_SECRET }
        : {}),
      ...(driftInterval !== undefined ? { driftIntervalMs: driftInterval * 1000 } : {}),
      ...(optionalString(ctx, 'artifacts') ? { artifacts: optionalString(ctx, 'artifacts') as string } : {}),
      ...(process.env.EDGEFLEET_ADMIN_TOKEN ? { adminToken: process.env.EDGEFLEET_ADMIN_TOKEN } : {}),
    });
    const dataDir = hub.ctx.settings.dataDir;
    const tokenSource = hub.admin.fromEnv ? 'EDGEFLEET_ADMIN_TOKEN' : `${dataDir}/admin-token`;
    ctx.printJson({
      url: hub.url,
      mqttPort: hub.mqttPort ?? null,
      dataDir,
      adminTokenFile: hub.admin.fromEnv ? null : `${dataDir}/admin-token`,
    });
    ctx.print(
      [
        '',
        `  edgefleet hub is running`,
        `  dashboard   ${hub.url}/`,
        `  API         ${hub.url}/api/v1  (OpenAPI at ${hub.url}/openapi.json)`,
        `  MQTT        ${hub.ctx.broker.description}`,
        `  admin token ${tokenSource}${hub.admin.createdFile ? ' (created now)' : ''}`,
        '',
        '  Next:',
        `    export EDGEFLEET_HUB=${hub.url} EDGEFLEET_TOKEN=$(cat ${tokenSource.startsWith('EDGEFLEET') ? '<your token>' : tokenSource})`,
        '    npx edgefleet token create --uses 3          # an enrollment token',
        `    npx edgefleet agent --hub ${hub.url} --enroll-token <T> --data ./agent-1`,
        '',
      ].join('\n'),
    );
    await waitForSignal();
    ctx.print('stopping hub…');
    await hub.stop();
    return 0;
  },
};
