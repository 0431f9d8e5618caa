/**
 * An in-process aedes broker for agent tests: it checks device credentials like the hub's broker,
 * records every message a client publishes (what the hub would receive), and can be stopped and
 * started again on the same port to make an outage.
 */

import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';

export interface Received {
  topic: string;
  payload: string;
  retain: boolean;
  clientId: string;
}

export interface TestBroker {
  url: string;
  /** Device id → secret accepted at CONNECT (username must equal the client id). */
  devices: Map<string, string>;
  received: Received[];
  /** While set, messages on topics ending with this suffix are recorded but never acknowledged. */
  holdAcksFor: string | undefined;
  connects: { clientId: string; username: string | undefined; clean: boolean }[];
  publish(topic: string, payload: string | Buffer, retain?: boolean): Promise<void>;
  /** Drop a client's connection without a DISCONNECT (what a crash or a cut cable looks like). */
  dropClient(clientId: string): void;
  /** Stop accepting and drop every connection (retained messages are lost, as on a broker restart). */
  stop(): Promise<void>;
  /** Start again on the same port. */
  start(): Promise<void>;
}

export async function startTestBroker(): Promise<TestBroker> {
  const devices = new Map<string, string>();
  const received: Received[] = [];
  const connects: TestBroker['connects'] = [];
  let aedes: Aedes;
  let server: Server | undefined;
  let port = 0;
  const hold: { suffix: string | undefined } = { suffix: undefined };
  const sockets = new Set<Socket>();

  const create = async () => {
    aedes = await Aedes.createBroker({
      authenticate(client, username, password, done) {
        connects.push({ clientId: client.id, username, clean: client.clean });
        const ok = username === client.id && devices.get(client.id) === password?.toString('utf8');
        if (!ok) return done(Object.assign(new Error('bad credentials'), { returnCode: 4 as const }), false);
        done(null, true);
      },
      // aedes sends a QoS 1 PUBACK before its `published` hook runs, so holding an ack means
      // holding the publish in `authorizePublish`, which runs first.
      authorizePublish(client, packet, done) {
        if (hold.suffix && packet.topic.endsWith(hold.suffix)) {
          received.push({
            topic: packet.topic,
            payload: Buffer.from(packet.payload).toString('utf8'),
            retain: packet.retain,
            clientId: client?.id ?? '',
          });
          return; // no PUBACK, ever
        }
        done(null);
      },
      published(packet, client, done) {
        if (client && !packet.topic.startsWith('$SYS')) {
          received.push({
            topic: packet.topic,
            payload: Buffer.from(packet.payload).toString('utf8'),
            retain: packet.retain,
            clientId: client.id,
          });
        }
        done();
      },
    });
    server = createServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      aedes.handle(socket);
    });
    await new Promise<void>((ok) => server?.listen(port, '127.0.0.1', () => ok()));
    port = (server.address() as AddressInfo).port;
  };
  await create();

  return {
    url: `mqtt://127.0.0.1:${port}`,
    devices,
    received,
    get holdAcksFor() {
      return hold.suffix;
    },
    set holdAcksFor(v: string | undefined) {
      hold.suffix = v;
    },
    connects,
    publish: (topic, payload, retain = true) =>
      new Promise((ok, fail) =>
        aedes.publish(
          { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain, dup: false },
          (error) => (error ? fail(error) : ok()),
        ),
      ),
    dropClient(clientId) {
      const client = (aedes as unknown as { clients: Record<string, { conn: Socket }> }).clients[clientId];
      client?.conn.destroy();
    },
    async stop() {
      const running = server;
      if (!running) return;
      server = undefined;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((ok) => running.close(() => ok()));
      await new Promise<void>((ok) => aedes.close(() => ok()));
    },
    start: create,
  };
}
