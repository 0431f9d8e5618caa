/**
 * The agent's MQTT connection: Last Will and retained status, the retained desired state in,
 * remote commands in and replies out, reported state out, and the outbox drained in order
 * whenever the broker is reachable. Every incoming payload is validated; a bad one is logged
 * and counted, never fatal.
 */
import {
  commandRequest,
  type DesiredState,
  desiredState,
  EDGEFLEET_VERSION,
  encodeMessage,
  parseDeviceTopic,
  parseMessage,
  type ReportedState,
  topics,
  ValidationError,
} from '@edgefleet/protocol';
import mqtt, { type MqttClient } from 'mqtt';
import type { Logger } from 'pino';
import type { Outbox, OutboxEntry } from './state/outbox.ts';

export interface LinkOptions {
  url: string;
  /** Trusted CA for mqtts/wss brokers with a private certificate. */
  ca?: string;
  deviceId: string;
  secret: string;
  logger: Logger;
  outbox: Outbox;
  onDesired(desired: DesiredState): void;
  onCommand(name: string, args: Record<string, unknown>): Promise<unknown>;
  /** A chunk of a blob being received over MQTT. */
  onChunk(sha256: string, payload: Buffer): void;
  /** The reported state to publish after (re)connecting. */
  currentReported(): Promise<ReportedState>;
}

/** Merge consecutive telemetry/stats entries into one message each, so a replay is a few messages. */
export function batchEntries(
  entries: readonly OutboxEntry[],
  maxItems = 200,
): { topic: string; payload: string; lastId: number }[] {
  const out: {
    topic: string;
    payload: string;
    lastId: number;
    items?: unknown[];
    key?: 'samples' | 'windows';
  }[] = [];
  for (const entry of entries) {
    const kind = parseDeviceTopic(entry.topic)?.kind;
    const key = kind === 'telemetry' ? 'samples' : kind === 'stats' ? 'windows' : undefined;
    const last = out.at(-1);
    let items: unknown[] | undefined;
    if (key) {
      try {
        items = (JSON.parse(entry.payload) as Record<string, unknown[]>)[key];
      } catch {
        items = undefined;
      }
    }
    if (
      key &&
      items &&
      last?.key === key &&
      last.topic === entry.topic &&
      (last.items?.length ?? 0) + items.length <= maxItems
    ) {
      last.items?.push(...items);
      last.lastId = entry.id;
      continue;
    }
    out.push({
      topic: entry.topic,
      payload: entry.payload,
      lastId: entry.id,
      ...(key && items ? { items: [...items], key } : {}),
    });
  }
  return out.map((m) => ({
    topic: m.topic,
    lastId: m.lastId,
    payload: m.key && m.items ? JSON.stringify({ [m.key]: m.items }) : m.payload,
  }));
}

export class DeviceLink {
  private client: MqttClient | undefined;
  private draining: Promise<void> | undefined;
  invalidMessages = 0;

  constructor(private readonly o: LinkOptions) {}

  get connected(): boolean {
    return this.client?.connected === true;
  }

  start(): void {
    const { deviceId, logger } = this.o;
    const offline = encodeMessage({
      state: 'offline',
      agentVersion: EDGEFLEET_VERSION,
      ts: new Date().toISOString(),
    });
    const client = mqtt.connect(this.o.url, {
      clientId: deviceId,
      username: deviceId,
      password: this.o.secret,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
      // No 64 K-entry cache of 2-byte number buffers in mqtt-packet (~6 MB of heap held for good);
      // a device publishes a few messages a minute, so allocating them as needed costs nothing.
      writeCache: false,
      will: { topic: topics.status(deviceId), payload: Buffer.from(offline), qos: 1, retain: true },
      ...(this.o.ca ? { ca: this.o.ca } : {}),
    });
    this.client = client;
    client.on('connect', () => {
      logger.info({ broker: new URL(this.o.url).host }, 'connected');
      this.onConnect().catch((error: unknown) => logger.warn({ err: error }, 'after-connect work failed'));
    });
    client.on('offline', () => logger.warn('broker unreachable; telemetry goes to the outbox'));
    client.on('error', (error) => logger.warn({ err: error.message }, 'mqtt error'));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  private async onConnect(): Promise<void> {
    const client = this.client;
    if (!client) return;
    const { deviceId } = this.o;
    await client.publishAsync(
      topics.status(deviceId),
      encodeMessage({ state: 'online', agentVersion: EDGEFLEET_VERSION, ts: new Date().toISOString() }),
      { qos: 1, retain: true },
    );
    await client.subscribeAsync({
      [topics.desired(deviceId)]: { qos: 1 },
      [topics.chunks(deviceId, '+')]: { qos: 1 },
      [`${topics.cmd(deviceId, '+')}`]: { qos: 1 },
    });
    await this.publishReported(await this.o.currentReported());
    await this.drain();
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parsed = parseDeviceTopic(topic);
    try {
      if (parsed?.kind === 'desired') {
        if (payload.length === 0) return;
        this.o.onDesired(parseMessage(desiredState, payload, 'desired state'));
      } else if (parsed?.kind === 'chunks') {
        this.o.onChunk(parsed.sha256, payload);
      } else if (parsed?.kind === 'cmd') {
        const request = parseMessage(commandRequest, payload, 'command');
        this.o
          .onCommand(parsed.command, request.args)
          .then(
            (result) => ({ id: request.id, ok: true as const, result }),
            (error: Error) => ({
              id: request.id,
              ok: false as const,
              error: { code: (error as { code?: string }).code ?? 'COMMAND_FAILED', message: error.message },
            }),
          )
          .then((reply) =>
            this.client?.publishAsync(
              topics.cmdReply(this.o.deviceId, parsed.command),
              encodeMessage(reply),
              { qos: 1 },
            ),
          )
          .catch((error: unknown) => this.o.logger.warn({ err: error }, 'command reply failed'));
      }
    } catch (error) {
      this.invalidMessages++;
      this.o.logger.warn(
        { topic, error: error instanceof ValidationError ? error.message : String(error) },
        'invalid message ignored',
      );
    }
  }

  async publishReported(reported: ReportedState): Promise<void> {
    if (!this.connected) return; // sent on the next connect
    await this.client
      ?.publishAsync(topics.reported(this.o.deviceId), encodeMessage(reported), { qos: 1, retain: true })
      .catch(() => undefined);
  }

  /**
   * Send everything in the outbox, oldest first; each entry is removed only after the broker's
   * PUBACK. Resolves when this pass ends (a call during a pass joins it).
   */
  drain(): Promise<void> {
    this.draining ??= this.drainPass().finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  private async drainPass(): Promise<void> {
    try {
      while (this.connected) {
        const entries = await this.o.outbox.pending(500);
        if (entries.length === 0) break;
        for (const message of batchEntries(entries)) {
          if (!this.connected) return;
          await this.client?.publishAsync(message.topic, message.payload, { qos: 1 });
          await this.o.outbox.ack(message.lastId);
        }
      }
    } catch (error) {
      this.o.logger.warn(
        { err: (error as Error).message },
        'outbox drain interrupted; will resume on reconnect',
      );
    }
  }

  /** Before shutting down: send what the outbox holds while connected, for at most `timeoutMs`. */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let pending = (await this.o.outbox.stats()).pending;
    while (pending > 0 && this.connected && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.drain(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, deadline - Date.now());
        }),
      ]);
      clearTimeout(timer);
      const left = (await this.o.outbox.stats()).pending;
      if (left >= pending) break; // no progress (publishes failing): keep the rest for next start
      pending = left;
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    if (!client) return;
    if (client.connected) {
      await client
        .publishAsync(
          topics.status(this.o.deviceId),
          encodeMessage({ state: 'offline', agentVersion: EDGEFLEET_VERSION, ts: new Date().toISOString() }),
          { qos: 1, retain: true },
        )
        .catch(() => undefined);
    }
    await client.endAsync().catch(() => undefined);
  }
}
