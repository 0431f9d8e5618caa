/**
 * An external broker (Mosquitto, EMQX, HiveMQ) reached as an MQTT client. Device messages arrive
 * through `handleMessage`, so the broker gets our PUBACK only after the message is stored; the
 * session is persistent (fixed client id, clean=false), so the broker queues while the hub is down.
 * With MQTT 5 and a shared-subscription group, each message reaches one of several hub replicas.
 */
import { randomBytes } from 'node:crypto';
import { hubSubscriptions, parseDeviceTopic, sharedSubscription } from '@edgefleet/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import { bootstrapHubRole, createDynsecControl } from './dynsec.ts';
import type { BrokerLink, DeviceMessageHandler } from './link.ts';
import { adoptSession } from './session-adoption.ts';

interface ExternalOptions {
  url: string;
  /** URL agents should use; defaults to `url` without credentials. */
  agentUrl?: string;
  logger: Logger;
  /** Session identity of this hub replica (stable across restarts). */
  clientId: string;
  /** MQTT 5 shared-subscription group; when set, replicas split the device traffic. */
  sharedGroup?: string;
  /** Manage device credentials and ACLs with Mosquitto's dynamic-security plugin. */
  dynsec?: boolean;
}

export async function createExternalBroker(options: ExternalOptions): Promise<BrokerLink> {
  const { logger } = options;
  const url = new URL(options.url);
  const agentUrl = new URL(options.agentUrl ?? options.url);
  agentUrl.username = '';
  agentUrl.password = '';
  let handler: DeviceMessageHandler | undefined;
  const shared = options.sharedGroup !== undefined;
  if (options.dynsec) await bootstrapHubRole(options.url, logger);
  const client: MqttClient = mqtt.connect(options.url, {
    clientId: options.clientId || `edgefleet-hub-${randomBytes(4).toString('hex')}`,
    clean: false,
    protocolVersion: shared ? 5 : 4,
    ...(shared ? { properties: { sessionExpiryInterval: 3600 } } : {}),
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    resubscribe: true,
  });
  const hubHandlers = new Map<string, (payload: Buffer) => void>();
  client.handleMessage = (packet, callback) => {
    const topic = packet.topic;
    const hubHandler = hubHandlers.get(topic);
    if (hubHandler) {
      hubHandler(Buffer.from(packet.payload as Buffer));
      return callback();
    }
    const deviceId = parseDeviceTopic(topic)?.deviceId;
    if (!handler || !deviceId) return callback();
    handler(topic, Buffer.from(packet.payload as Buffer), deviceId).then(
      () => callback(),
      (error: unknown) => {
        logger.error({ err: error, topic }, 'storing a device message failed; broker will redeliver');
        // Leaving it unacknowledged: reconnecting makes the broker redeliver it.
        client.end(true, () => client.reconnect());
      },
    );
  };
  client.on('error', (error) => logger.warn({ err: error }, 'mqtt client error'));
  client.on('connect', () => logger.info({ broker: url.host }, 'connected to external MQTT broker'));
  client.on('offline', () => logger.warn({ broker: url.host }, 'external MQTT broker unreachable; retrying'));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`could not connect to MQTT broker at ${url.host}`)),
      15_000,
    );
    client.once('connect', () => {
      clearTimeout(timer);
      resolve();
    });
  });

  const dynsec = options.dynsec ? await createDynsecControl(client, logger) : undefined;
  return {
    agentUrl: () => agentUrl.toString().replace(/\/$/, ''),
    description: `external ${url.protocol}//${url.host}${shared ? ` (shared group ${options.sharedGroup})` : ''}`,
    async start(onDeviceMessage) {
      handler = onDeviceMessage;
      const filters = hubSubscriptions.map((f) =>
        shared ? sharedSubscription(options.sharedGroup ?? 'edgefleet', f) : f,
      );
      await client.subscribeAsync(Object.fromEntries(filters.map((topic) => [topic, { qos: 1 as const }])));
    },
    async publish(topic, payload, { retain }) {
      await client.publishAsync(topic, payload, { qos: 1, retain });
    },
    async onHubMessage(topic, handler) {
      hubHandlers.set(topic, handler);
      // Not shared: every replica needs every hub-to-hub message.
      await client.subscribeAsync(topic, { qos: 0 });
    },
    async provisionDevice(deviceId, secret) {
      await dynsec?.provisionDevice(deviceId, secret);
    },
    async disconnectDevice(deviceId) {
      // Without dynamic security the broker's own credential store must drop the device (docs/security.md).
      await dynsec?.removeDevice(deviceId);
    },
    ...(shared
      ? {
          adoptSession: (clientId: string) =>
            adoptSession({
              url: options.url,
              clientId,
              filters: hubSubscriptions.map((f) => sharedSubscription(options.sharedGroup ?? 'edgefleet', f)),
              logger,
              handle: (topic, payload) => {
                const deviceId = parseDeviceTopic(topic)?.deviceId;
                return handler && deviceId ? handler(topic, payload, deviceId) : Promise.resolve();
              },
            }),
        }
      : {}),
    isConnected: () => client.connected,
    async close() {
      await client.endAsync();
    },
  };
}
