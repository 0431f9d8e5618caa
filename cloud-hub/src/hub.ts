/** Start and stop a hub: store, artifact store, broker, HTTP server and periodic work. */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { EDGEFLEET_VERSION, type TrustedKey } from '@edgefleet/protocol';
import { serve } from '@hono/node-server';
import pino, { type Logger } from 'pino';
import { createApp } from './app.ts';
import { createDatabaseArtifactStore } from './artifacts/database.ts';
import { createDiskArtifactStore } from './artifacts/disk.ts';
import { digestsEqual, hashSecret } from './auth/secrets.ts';
import { createEmbeddedBroker } from './broker/embedded.ts';
import { createExternalBroker } from './broker/external.ts';
import type { BrokerAuthenticator, BrokerLink } from './broker/link.ts';
import type { HubContext } from './context.ts';
import { createDriftMonitor } from './drift/monitor.ts';
import { createChunkStreamer } from './ingest/chunk-streamer.ts';
import { createCommandReplies } from './ingest/commands.ts';
import { createDeviceMessageHandler } from './ingest/device-messages.ts';
import { createLiveBus } from './live.ts';
import { relayLiveEvents } from './live-relay.ts';
import { createMetrics } from './metrics.ts';
import { watchReplicas } from './replicas.ts';
import { republishAllDesired } from './rollouts/desired.ts';
import { tickRollouts } from './rollouts/engine.ts';
import { type AdminTokenResult, brokerBridgeSecret, ensureAdminToken, hubSigningKey } from './setup.ts';
import { openStore, type Store } from './store/store.ts';
import { createWebhookSender } from './webhooks.ts';

export interface HubOptions {
  /** HTTP port (0 picks a free one). */
  port?: number;
  host?: string;
  dataDir?: string;
  /** Embedded broker port (0 picks a free one); ignored with `mqttUrl`. */
  mqttPort?: number;
  /** Use an external broker instead of the embedded one. */
  mqttUrl?: string;
  /** MQTT 5 shared-subscription group for several replicas on an external broker. */
  mqttSharedGroup?: string;
  /** Provision device credentials and ACLs on Mosquitto through its dynamic-security plugin. */
  mqttDynsec?: boolean;
  /**
   * External broker: device messages in flight on the hub's connection (being stored, not yet
   * acknowledged); default 100. More lets a group commit carry more rows (docs/scale-out.md).
   */
  mqttInflight?: number;
  /** Serve the API over HTTPS and the embedded broker over TLS (mqtts, wss) with this certificate. */
  tls?: { cert: Buffer; key: Buffer };
  /** Embedded broker: also accept MQTT over WebSocket on this port. */
  mqttWsPort?: number;
  /** Host name agents should use for the embedded broker (default: the one they reached the API on). */
  advertisedHost?: string;
  /**
   * Where artifacts live: `db` (the hub's database: replicas share it), or a directory (a shared
   * mount for replicas); default DIR/artifacts.
   */
  artifacts?: string;
  /** postgres://… or a SQLite path (default DIR/hub.db). */
  db?: string;
  adminToken?: string;
  maxUploadBytes?: number;
  /** How often periodic work (rollout timeouts) runs. */
  tickMs?: number;
  /** How often drift is evaluated for versions receiving statistics (default 30 s). */
  driftIntervalMs?: number;
  /** Alert webhooks (drift status changes), and the HMAC secret that signs their bodies. */
  webhooks?: string[];
  webhookSecret?: string;
  logger?: Logger;
  /** Name of this replica in leases and logs. */
  replicaId?: string;
}

export interface Hub {
  url: string;
  port: number;
  mqttPort: number | undefined;
  mqttWsPort: number | undefined;
  ctx: HubContext;
  admin: AdminTokenResult;
  stop(): Promise<void>;
}

function brokerAuthenticator(store: Store, bridgeSecret: string): BrokerAuthenticator {
  const bridgeHash = hashSecret(bridgeSecret);
  return async (clientId, username, password) => {
    if (!username || !password) return undefined;
    if (username === 'edgefleet-hub')
      return digestsEqual(hashSecret(password), bridgeHash) ? { kind: 'hub' } : undefined;
    const device = await store.devices.findBySecretHash(hashSecret(password));
    // The client id must be the device id, so no device can take over another's session.
    if (!device || device.id !== username || clientId !== device.id) return undefined;
    return { kind: 'device', deviceId: device.id };
  };
}

export async function startHub(options: HubOptions = {}): Promise<Hub> {
  const logger =
    options.logger ?? pino({ name: 'edgefleet-hub', level: process.env.EDGEFLEET_LOG_LEVEL ?? 'info' });
  const dataDir = resolve(options.dataDir ?? 'edgefleet-data');
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore(options.db ?? join(dataDir, 'hub.db'), (error) =>
    logger.warn({ err: error }, 'a pooled PostgreSQL connection was lost; the next query opens another'),
  );
  const cleanups: (() => Promise<void>)[] = [() => store.close()];
  try {
    const artifacts =
      options.artifacts === 'db'
        ? createDatabaseArtifactStore(store.db, store.description)
        : createDiskArtifactStore(resolve(options.artifacts ?? join(dataDir, 'artifacts')));
    const signingKey = await hubSigningKey(store);
    const admin = await ensureAdminToken(store, dataDir, options.adminToken);
    const metrics = createMetrics();
    const host = options.host ?? '0.0.0.0';
    const replicaId = options.replicaId ?? `hub-${randomBytes(4).toString('hex')}`;
    let broker: BrokerLink;
    let mqttPort: number | undefined;
    let mqttWsPort: number | undefined;
    if (options.mqttUrl) {
      broker = await createExternalBroker({
        url: options.mqttUrl,
        logger,
        // A lone hub keeps one session across restarts; replicas each have their own (adopted if they die).
        clientId: hubClientId(options.mqttSharedGroup ? replicaId : (options.replicaId ?? 'main')),
        ...(options.mqttSharedGroup ? { sharedGroup: options.mqttSharedGroup } : {}),
        ...(options.mqttDynsec ? { dynsec: true } : {}),
        ...(options.mqttInflight !== undefined ? { inflight: options.mqttInflight } : {}),
      });
    } else {
      const embedded = await createEmbeddedBroker({
        port: options.mqttPort ?? 1883,
        host,
        ...(options.advertisedHost ? { advertisedHost: options.advertisedHost } : {}),
        authenticate: brokerAuthenticator(store, await brokerBridgeSecret(store)),
        logger,
        onInvalid: (reason) => metrics.mqttInvalid.inc({ reason }),
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.mqttWsPort !== undefined ? { wsPort: options.mqttWsPort } : {}),
      });
      broker = embedded;
      mqttPort = embedded.port;
      mqttWsPort = embedded.wsPort;
    }
    cleanups.unshift(() => broker.close());

    const ctx: HubContext = {
      settings: {
        publicUrl: '',
        dataDir,
        maxUploadBytes: options.maxUploadBytes ?? 2 * 1024 ** 3,
        enrollPerMinute: 60,
      },
      store,
      artifacts,
      broker,
      logger,
      metrics,
      live: createLiveBus(logger),
      signingKey,
      replicaId,
      async trustedKeys(): Promise<TrustedKey[]> {
        return [{ keyId: signingKey.keyId, publicKey: signingKey.publicKey }, ...(await store.keys.active())];
      },
    };
    const webhooks = createWebhookSender({
      urls: options.webhooks ?? [],
      ...(options.webhookSecret ? { secret: options.webhookSecret } : {}),
      logger,
    });
    cleanups.unshift(async () => webhooks.stop());
    const drift = createDriftMonitor(ctx, {
      webhooks,
      ...(options.driftIntervalMs ? { intervalMs: options.driftIntervalMs } : {}),
    });
    ctx.driftStatus = drift.status;
    cleanups.unshift(async () => drift.stop());
    const chunks = createChunkStreamer(ctx);
    cleanups.unshift(async () => chunks.stop());
    const handler = createDeviceMessageHandler(ctx, createCommandReplies(), chunks);
    await broker.start(handler);
    cleanups.unshift(() => handler.drain());
    await republishAllDesired(ctx);
    await relayLiveEvents(ctx);

    const app = createApp(ctx);
    const server = serve({
      fetch: app.fetch,
      port: options.port ?? 8080,
      hostname: host,
      ...(options.tls
        ? { createServer: createHttpsServer, serverOptions: { cert: options.tls.cert, key: options.tls.key } }
        : {}),
    });
    await new Promise<void>((resolveListen, reject) => {
      server.once('listening', () => resolveListen());
      server.once('error', reject);
    });
    cleanups.unshift(() => new Promise<void>((done) => server.close(() => done())));
    const port = (server.address() as AddressInfo).port;
    const url = `${options.tls ? 'https' : 'http'}://${host === '0.0.0.0' || host === '::' ? 'localhost' : host}:${port}`;
    ctx.settings.publicUrl = url;

    const ticker = setInterval(() => {
      // One replica at a time runs the periodic work; if it dies, its lease expires and another takes over.
      const tickMs = options.tickMs ?? 5000;
      ctx.store.leases
        .acquire('rollouts:tick', ctx.replicaId, tickMs * 3)
        .then((held) => (held ? tickRollouts(ctx) : undefined))
        .catch((error: unknown) => logger.error({ err: error }, 'rollout tick failed'));
    }, options.tickMs ?? 5000);
    ticker.unref();
    cleanups.unshift(async () => clearInterval(ticker));
    if (options.mqttSharedGroup) {
      const stopWatching = watchReplicas(ctx, hubClientId);
      cleanups.unshift(async () => stopWatching());
    }

    logger.info(
      {
        url,
        mqtt: broker.description,
        store: store.description,
        artifacts: artifacts.description,
        version: EDGEFLEET_VERSION,
      },
      'hub ready',
    );
    let stopped = false;
    return {
      url,
      port,
      mqttPort,
      mqttWsPort,
      ctx,
      admin,
      async stop() {
        if (stopped) return;
        stopped = true;
        for (const cleanup of cleanups) {
          await cleanup().catch((error: unknown) => logger.warn({ err: error }, 'error while stopping'));
        }
      },
    };
  } catch (error) {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    throw error;
  }
}

/** The MQTT client id of a replica: stable across restarts, so its persistent session resumes. */
function hubClientId(replicaId: string): string {
  return `edgefleet-hub-${replicaId}`;
}
