/**
 * A TCP proxy the test controls: forward to a target, throttle bandwidth, cut every live
 * connection, or refuse new ones — to make networks slow or absent on purpose.
 */
import { connect, createServer, type Socket } from 'node:net';

export interface TcpProxy {
  port: number;
  url(scheme: string): string;
  /** Bytes per second from target to client (0: unlimited). */
  setRate(bytesPerSecond: number): void;
  /** Drop live connections and refuse new ones until `restore()`. */
  cut(): void;
  restore(): void;
  /** Flip one byte of the next server-to-client data past `afterBytes` of a connection (a corrupt download). */
  corruptOnce(afterBytes: number): void;
  /** First lines of each HTTP request seen (method, path and headers), to check e.g. Range. */
  requests: string[];
  close(): Promise<void>;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  let rate = 0;
  let down = false;
  let corruptAfter: number | undefined;
  const live = new Set<Socket>();
  const requests: string[] = [];
  const server = createServer((client) => {
    if (down) return client.destroy();
    const upstream = connect(targetPort, targetHost);
    live.add(client);
    live.add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      live.delete(client);
      live.delete(upstream);
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
    client.on('data', (chunk) => {
      const text = chunk.toString('latin1');
      if (/^[A-Z]+ \/\S* HTTP\/1\.[01]\r\n/.test(text)) requests.push(text.split('\r\n\r\n')[0] ?? '');
      upstream.write(chunk);
    });
    let received = 0;
    upstream.on('data', (chunk: Buffer) => {
      received += chunk.byteLength;
      if (corruptAfter !== undefined && received > corruptAfter) {
        const at = Math.max(0, chunk.byteLength - (received - corruptAfter));
        chunk[at] = (chunk[at] ?? 0) ^ 0xff;
        corruptAfter = undefined;
      }
      if (rate <= 0) {
        client.write(chunk);
        return;
      }
      // Throttle: pause the upstream for as long as this chunk takes at the set rate.
      upstream.pause();
      client.write(chunk);
      setTimeout(() => upstream.resume(), (chunk.byteLength / rate) * 1000);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    url: (scheme) => `${scheme}://127.0.0.1:${port}`,
    setRate(bytesPerSecond) {
      rate = bytesPerSecond;
    },
    cut() {
      down = true;
      for (const s of live) s.destroy();
      live.clear();
    },
    restore() {
      down = false;
    },
    corruptOnce(afterBytes) {
      corruptAfter = afterBytes;
    },
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of live) s.destroy();
        server.close(() => resolve());
      }),
  };
}
