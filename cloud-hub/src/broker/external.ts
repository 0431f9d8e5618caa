/**
 * An external broker (Mosquitto, EMQX, HiveMQ) reached as an MQTT client. Device messages arrive
 * through `handleMessage`, and the broker gets our PUBACK only after the message is stored; the
 * session is persistent (fixed client id, clean=false), so the broker queues while the hub is down.
 * With MQTT 5 and a shared-subscription group, each message reaches one of several hub replicas.
 *
 * Several messages are in flight at once (`inflight`, default 100): the next message is taken
 * while earlier ones wait for their group commit, and PUBACKs go out in the order the messages
 * arrived, each once that message and every earlier one are stored. One message at a time meant
 * one database commit per message (about 1 ms on SQLite, several on PostgreSQL), slower than
 * devices publish in a burst, and the broker's queue for the hub then overflowed.
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
  /**
   * Device messages in flight on the connection (received, not yet acknowledged); default
   * {@link DEFAULT_INFLIGHT}. Sent as MQTT 5 Receive Maximum; with MQTT 3.1.1 (no shared group)
   * the broker's own limit applies too (Mosquitto: `max_inflight_messages`, default 20).
   */
  inflight?: number;
}

export const DEFAULT_INFLIGHT = 100;

/** Passed to mqtt.js's `handleMessage` callback: releases the next packet without a PUBACK. */
const ACK_LATER = new Error('acknowledged once stored');

export async function createExternalBroker(options: ExternalOptions): Promise<BrokerLink> {
  const { logger } = options;
  const url = new URL(options.url);
  const agentUrl = new URL(options.agentUrl ?? options.url);
  agentUrl.username = '';
  agentUrl.password = '';
  let handler: DeviceMessageHandler | undefined;
  const shared = options.sharedGroup !== undefined;
  if (options.dynsec) await bootstrapHubRole(options.url, logger);
  const inflight = Math.max(1, Math.min(65_535, options.inflight ?? DEFAULT_INFLIGHT));
  const client: MqttClient = mqtt.connect(options.url, {
    clientId: options.clientId || `edgefleet-hub-${randomBytes(4).toString('hex')}`,
    clean: false,
    protocolVersion: shared ? 5 : 4,
    ...(shared ? { properties: { sessionExpiryInterval: 3600, receiveMaximum: inflight } } : {}),
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    resubscribe: true,
  });
  const hubHandlers = new Map<string, (payload: Buffer) => void>();
  const sendPacket = (
    client as unknown as { _sendPacket(packet: object, cb?: () => void): void }
  )._sendPacket.bind(client);
  /**
   * The current connection's QoS 1 device messages, oldest first, until acknowledged. A PUBACK
   * goes out only for a stored message with nothing unstored before it (MQTT asks for PUBACKs in
   * the order the PUBLISHes came). A new connection gets a new array: what the old one had not
   * acknowledged, the broker sends again (stored twice at worst; duplicates are dropped by seq).
   */
  let pending: { messageId: number; stored: boolean }[] = [];
  /** mqtt.js's callback for the packet that found the window full: called when a slot frees. */
  let blocked: ((error?: Error) => void) | undefined;
  const release = () => {
    const next = blocked;
    blocked = undefined;
    next?.(ACK_LATER);
  };
  const acknowledge = (queue: typeof pending) => {
    if (queue !== pending || !client.connected) return;
    while (queue[0]?.stored) {
      const { messageId } = queue.shift() as { messageId: number };
      sendPacket({ cmd: 'puback', messageId });
    }
    if (queue.length < inflight) release();
  };
  client.on('close', () => {
    pending = [];
    release(); // that connection's packet pump is gone; let mqtt.js finish with it
  });
  client.handleMessage = (packet, callback) => {
    const topic = packet.topic;
    const hubHandler = hubHandlers.get(topic);
    if (hubHandler) {
      hubHandler(Buffer.from(packet.payload as Buffer));
      return callback();
    }
    const deviceId = parseDeviceTopic(topic)?.deviceId;
    if (!handler || !deviceId) return callback();
    const payload = Buffer.from(packet.payload as Buffer);
    if (packet.qos !== 1 || packet.messageId === undefined) {
      // QoS 0 (nothing to acknowledge): stored in arrival order, one at a time.
      handler(topic, payload, deviceId).then(
        () => callback(),
        (error: unknown) => {
          logger.error({ err: error, topic }, 'storing a device message failed');
          callback();
        },
      );
      return;
    }
    const queue = pending;
    const entry = { messageId: packet.messageId, stored: false };
    queue.push(entry);
    handler(topic, payload, deviceId).then(
      () => {
        entry.stored = true;
        acknowledge(queue);
      },
      (error: unknown) => {
        if (queue !== pending) return; // that connection is already gone
        logger.error({ err: error, topic }, 'storing a device message failed; broker will redeliver');
        // Leaving it (and everything after it) unacknowledged: reconnecting makes the broker redeliver.
        pending = [];
        client.end(true, () => client.reconnect());
      },
    );
    // mqtt.js hands over the next packet only once this callback is called; with an error it
    // sends no PUBACK (we send it, once stored). A full window holds the callback back.
    if (queue.length < inflight) callback(ACK_LATER);
    else blocked = callback;
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
