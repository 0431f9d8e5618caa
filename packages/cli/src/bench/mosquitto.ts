/**
 * A Mosquitto owned by the bench: its own port, data directory and configuration, set as
 * docs/scale-out.md recommends, instead of whatever the machine's system instance is configured with.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The broker settings from docs/scale-out.md ("Broker settings"), minus TLS and dynamic security. */
export const BENCH_MOSQUITTO_SETTINGS = ['max_queued_messages 100000', 'max_inflight_messages 100'];

export interface BenchMosquitto {
  url: string;
  stop(): Promise<void>;
}

/** Whether a `mosquitto` binary is on the PATH. */
export function hasMosquittoBinary(): boolean {
  const result = spawnSync('mosquitto', ['-h'], { stdio: 'ignore' });
  return result.error === undefined;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((ok) => server.close(ok));
  return port;
}

export async function startBenchMosquitto(): Promise<BenchMosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'edgefleet-bench-mosquitto-'));
  const port = await freePort();
  const config = join(dir, 'mosquitto.conf');
  await writeFile(
    config,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence true',
      `persistence_location ${dir}/`,
      ...BENCH_MOSQUITTO_SETTINGS,
      'log_dest stderr',
      'log_type error',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('mosquitto', ['-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const url = `mqtt://127.0.0.1:${port}`;
  const { connect } = await import('node:net');
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited: ${stderr.trim()}`);
    const up = await new Promise<boolean>((done) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('connect', () => done(socket.destroy() !== undefined));
      socket.once('error', () => done(false));
    });
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`mosquitto did not listen on ${port}: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((ok) => child.once('exit', ok));
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
