/**
 * Adopting a dead replica's MQTT session. Brokers keep routing a shared subscription's share to a
 * member whose persistent session is still alive, even while it is disconnected (Mosquitto, EMQX and
 * VerneMQ all do): a killed replica would sit on a third of the fleet's status reports and telemetry
 * until it came back. A surviving replica connects with the dead one's client id (resuming its
 * session), unsubscribes it from the group at once so no new traffic is routed there, stores
 * whatever the broker had queued (acknowledging each message only once stored, as always), and
 * ends the session. Redeliveries are harmless: device messages are deduplicated by sequence number.
 */
import mqtt from 'mqtt';
import type { Logger } from 'pino';

interface AdoptOptions {
  url: string;
  clientId: string;
  /** The shared filters the dead replica subscribed to. */
  filters: string[];
  logger: Logger;
  handle(topic: string, payload: Buffer): Promise<void>;
  /** Quiet time after which the queue counts as drained. */
  quietMs?: number;
  /** Upper bound on one adoption. */
  maxMs?: number;
}

export async function adoptSession(options: AdoptOptions): Promise<number> {
  const quietMs = options.quietMs ?? 1500;
  const deadline = Date.now() + (options.maxMs ?? 60_000);
  const orphan = mqtt.connect(options.url, {
    clientId: options.clientId,
    clean: false,
    protocolVersion: 5,
    properties: { sessionExpiryInterval: 3600 },
    reconnectPeriod: 0, // if the owner comes back it takes its session over; we just stop
    connectTimeout: 10_000,
    resubscribe: false,
  });
  let handled = 0;
  let inFlight = 0;
  let lastMessage = Date.now();
  let failed = false;
  orphan.handleMessage = (packet, callback) => {
    inFlight++;
    options.handle(packet.topic, Buffer.from(packet.payload as Buffer)).then(
      () => {
        inFlight--;
        handled++;
        lastMessage = Date.now();
        callback();
      },
      (error: unknown) => {
        inFlight--;
        failed = true;
        options.logger.error({ err: error, topic: packet.topic }, 'storing an adopted message failed');
        orphan.end(true); // unacknowledged: the session keeps it for the next try
      },
    );
  };
  orphan.on('error', (error) => options.logger.warn({ err: error }, 'adopted session error'));
  try {
    const connack = await new Promise<{ sessionPresent: boolean }>((resolve, reject) => {
      orphan.once('connect', (packet) => resolve({ sessionPresent: packet.sessionPresent }));
      orphan.once('error', reject);
      orphan.once('close', () => reject(new Error('connection closed before CONNACK')));
    });
    if (connack.sessionPresent) {
      // Leave the group first; messages already queued for the session are still delivered.
      await orphan.unsubscribeAsync(options.filters);
      lastMessage = Date.now();
      while (Date.now() < deadline && !failed && orphan.connected) {
        if (inFlight === 0 && Date.now() - lastMessage >= quietMs) break;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (failed || !orphan.connected) return handled;
    // Ending with a zero session expiry deletes the session at the broker.
    await new Promise<void>((done) =>
      orphan.end(false, { reasonCode: 0, properties: { sessionExpiryInterval: 0 } }, () => done()),
    );
    return handled;
  } finally {
    if (!orphan.disconnected) orphan.end(true);
  }
}
