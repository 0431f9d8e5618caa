/**
 * The embedded broker: aedes on a TCP port, with per-device credentials checked at CONNECT and
 * the topic ACL of @edgefleet/protocol enforced on every publish and subscribe. The hub handles
 * device messages in aedes' `authorizePublish` hook, so a device gets its PUBACK only once the hub
 * has stored the message: aedes writes a QoS 1 PUBACK right after `authorizePublish` and before the
 * `published` hook runs, so storing in `published` (as the hub once did) acknowledged messages a
 * crash could still lose. aedes hands all the PUBLISHes of one socket read to the hooks at once, so a
 * device with several messages in flight gets them into the same group commit.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { deviceMayPublish, deviceMaySubscribe } from '@edgefleet/protocol';
import { Aedes, type Client } from 'aedes';
import type { Logger } from 'pino';
import { createWebSocketStream, WebSocketServer } from 'ws';
import type { BrokerAuthenticator, BrokerLink, BrokerPrincipal, DeviceMessageHandler } from './link.ts';

interface EmbeddedOptions {
  port: number;
  host: string;
  /** Host name agents use to reach this broker, when set (else the host they reached the API on). */
  advertisedHost?: string;
  authenticate: BrokerAuthenticator;
  logger: Logger;
  onInvalid?: (reason: string) => void;
  /** Certificate and key: the MQTT port speaks TLS (mqtts), the WebSocket port wss. */
  tls?: { cert: Buffer; key: Buffer };
  /** Also accept MQTT over WebSocket on this port (0 picks one). */
  wsPort?: number;
}

type TaggedClient = Client & { edgefleet?: BrokerPrincipal };

function listen(server: Server | HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

export async function createEmbeddedBroker(
  options: EmbeddedOptions,
): Promise<BrokerLink & { port: number; wsPort: number | undefined }> {
  const { logger } = options;
  let handler: DeviceMessageHandler | undefined;
  const aedes = await Aedes.createBroker({
    authenticate(client, username, password, done) {
      options
        .authenticate(client.id, username, password?.toString('utf8'))
        .then((principal) => {
          if (!principal) {
            const error = Object.assign(new Error('bad username or password'), { returnCode: 4 as const });
            logger.warn({ clientId: client.id, username }, 'mqtt connection refused: bad credentials');
            return done(error, false);
          }
          (client as TaggedClient).edgefleet = principal;
          done(null, true);
        })
        .catch((error: unknown) => {
          logger.error({ err: error }, 'mqtt authentication failed');
          done(Object.assign(new Error('server unavailable'), { returnCode: 3 as const }), false);
        });
    },
    authorizePublish(client, packet, done) {
      const principal = (client as TaggedClient | null)?.edgefleet;
      if (!client || principal?.kind === 'hub') return done(null);
      if (principal?.kind === 'device' && deviceMayPublish(principal.deviceId, packet.topic)) {
        if (!handler) return done(null);
        handler(packet.topic, packet.payload as Buffer, principal.deviceId).then(
          () => done(null),
          (error: unknown) => {
            // Not acknowledged (aedes drops the connection): the device keeps the message and sends it again.
            logger.error({ err: error, topic: packet.topic }, 'storing a device message failed');
            done(error as Error);
          },
        );
        return;
      }
      logger.warn({ clientId: client.id, topic: packet.topic }, 'mqtt publish denied by ACL');
      options.onInvalid?.('acl-publish');
      done(new Error('not authorized'));
    },
    authorizeSubscribe(client, subscription, done) {
      const principal = (client as TaggedClient).edgefleet;
      if (principal?.kind === 'hub') return done(null, subscription);
      if (principal?.kind === 'device' && deviceMaySubscribe(principal.deviceId, subscription.topic))
        return done(null, subscription);
      logger.warn({ clientId: client.id, topic: subscription.topic }, 'mqtt subscribe denied by ACL');
      options.onInvalid?.('acl-subscribe');
      // A null subscription is a refusal (SUBACK 0x80) without dropping the connection.
      done(null, null);
    },
  });
  const server: Server = options.tls
    ? createTlsServer(options.tls, aedes.handle)
    : createServer(aedes.handle);
  const port = await listen(server, options.port, options.host);
  logger.info({ port, host: options.host, tls: options.tls !== undefined }, 'embedded MQTT broker listening');
  let ws: { server: HttpServer; port: number } | undefined;
  if (options.wsPort !== undefined) {
    const http = options.tls ? createHttpsServer(options.tls) : createHttpServer();
    const wss = new WebSocketServer({ server: http });
    wss.on('connection', (socket, request) => aedes.handle(createWebSocketStream(socket) as never, request));
    ws = { server: http, port: await listen(http, options.wsPort, options.host) };
    logger.info(
      { port: ws.port, tls: options.tls !== undefined },
      'embedded MQTT broker listening on WebSocket',
    );
  }
  const scheme = options.tls ? 'mqtts' : 'mqtt';

  return {
    port,
    agentUrl: (requestHost) => `${scheme}://${options.advertisedHost ?? requestHost ?? '127.0.0.1'}:${port}`,
    wsPort: ws?.port,
    description: `embedded aedes on ${options.host}:${port}`,
    async start(onDeviceMessage) {
      handler = onDeviceMessage;
    },
    publish(topic, payload, { retain }) {
      return new Promise((resolve, reject) => {
        aedes.publish(
          {
            cmd: 'publish',
            topic,
            payload: typeof payload === 'string' ? Buffer.from(payload) : payload,
            qos: 1,
            retain,
            dup: false,
          },
          (error) => (error ? reject(error) : resolve()),
        );
      });
    },
    // One process, one replica: nothing to relay between hubs.
    async onHubMessage() {},
    // The embedded broker checks every CONNECT against the hub's device table: nothing to provision.
    async provisionDevice() {},
    async disconnectDevice(deviceId) {
      const clients = (aedes as unknown as { clients: Record<string, TaggedClient> }).clients;
      for (const client of Object.values(clients)) {
        const principal = client.edgefleet;
        if (principal?.kind === 'device' && principal.deviceId === deviceId) client.close();
      }
    },
    isConnected: () => !aedes.closed,
    async close() {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
      if (ws) await new Promise<void>((resolve) => ws?.server.close(() => resolve()));
    },
  };
}
