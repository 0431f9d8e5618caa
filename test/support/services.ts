/**
 * Real services for tests. A suite that needs one asks `requireService`; when it is absent the
 * suite skips with a clear message, or fails when EDGEFLEET_REQUIRE_SERVICES=1 (CI sets it).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const requireServices = process.env.EDGEFLEET_REQUIRE_SERVICES === '1';

export type ServiceName =
  | 'postgres'
  | 'mosquitto'
  | 'mosquitto-binary'
  | 'chromium'
  | 'shared'
  | 'qemu'
  | 'arm64-sysroot'
  | 'flatc'
  | 'python-onnx'
  | 'tmpfs';

export interface ServiceCheck {
  available: boolean;
  reason: string;
}

/** The shared data folder (models, conformance suites): env EDGEFLEET_SHARED_DIR, else ../shared. */
export function sharedDir(): string {
  const candidates = [process.env.EDGEFLEET_SHARED_DIR, resolve(projectRoot, '../shared'), '/work/shared'];
  return (
    candidates.find((c): c is string => c !== undefined && existsSync(join(c, 'DESIGN.md'))) ??
    resolve(projectRoot, '../shared')
  );
}

export const POSTGRES_URL =
  process.env.EDGEFLEET_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const MOSQUITTO_URL = process.env.EDGEFLEET_TEST_MQTT ?? 'mqtt://127.0.0.1:1883';

function tcpReachable(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host, port });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

const binaries: Partial<Record<ServiceName, string>> = {
  'mosquitto-binary': '/usr/sbin/mosquitto',
  chromium: '/usr/bin/chromium',
  qemu: '/usr/bin/qemu-aarch64-static',
  // Debian's libc6-arm64-cross: the arm64 glibc qemu-user runs arm64 binaries against (-L).
  'arm64-sysroot': '/usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1',
  flatc: '/usr/bin/flatc',
};

async function check(name: ServiceName): Promise<ServiceCheck> {
  switch (name) {
    case 'postgres': {
      const url = new URL(POSTGRES_URL);
      const ok = await tcpReachable(url.hostname, Number(url.port || 5432));
      return { available: ok, reason: ok ? '' : `PostgreSQL is not reachable at ${url.host}` };
    }
    case 'mosquitto': {
      const url = new URL(MOSQUITTO_URL);
      const ok = await tcpReachable(url.hostname, Number(url.port || 1883));
      return { available: ok, reason: ok ? '' : `Mosquitto is not reachable at ${url.host}` };
    }
    case 'shared': {
      const dir = sharedDir();
      const ok = existsSync(join(dir, 'models')) && existsSync(join(dir, 'conformance'));
      return {
        available: ok,
        reason: ok
          ? ''
          : `the shared models and conformance data are not at ${dir} (set EDGEFLEET_SHARED_DIR)`,
      };
    }
    case 'python-onnx': {
      const ok = await new Promise<boolean>((done) => {
        const p = spawn('/usr/bin/python3', ['-c', 'import onnx'], { stdio: 'ignore' });
        p.on('error', () => done(false));
        p.on('exit', (code) => done(code === 0));
      });
      return { available: ok, reason: ok ? '' : 'Debian python3-onnx is not installed' };
    }
    case 'tmpfs': {
      // Mounting a small tmpfs needs root (or CAP_SYS_ADMIN); the full-disk tests use one.
      const ok = process.getuid?.() === 0;
      return { available: ok, reason: ok ? '' : 'mounting a tmpfs needs root' };
    }
    default: {
      const path = binaries[name] ?? name;
      const ok = existsSync(path);
      return { available: ok, reason: ok ? '' : `${path} is not installed` };
    }
  }
}

/**
 * Check a service; logs why a suite will skip, or throws when services are required.
 * Use as `const pg = await requireService('postgres'); describe.skipIf(!pg.available)(…)`.
 */
export async function requireService(name: ServiceName): Promise<ServiceCheck> {
  const result = await check(name);
  if (!result.available) {
    if (requireServices) throw new Error(`EDGEFLEET_REQUIRE_SERVICES=1 but ${result.reason}`);
    console.warn(
      `skipping tests that need ${name}: ${result.reason} (EDGEFLEET_REQUIRE_SERVICES=1 fails instead)`,
    );
  }
  return result;
}

/** A free TCP port on 127.0.0.1 (for programs like mosquitto that cannot listen on port 0). */
export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => done(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Wait until `probe` returns true, polling; rejects with `what` after `timeoutMs`. */
export async function waitFor(
  probe: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface MosquittoProcess {
  url: string;
  port: number;
  dir: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * A private Mosquitto on a free port, so a test can stop and restart its broker. `extraConfig`
 * is appended to the generated mosquitto.conf (e.g. a password file or dynamic security).
 */
export async function startMosquitto(
  extraConfigIn = 'allow_anonymous true\n',
  options: { persistent?: boolean; dynsecAdmin?: { username: string; password: string } } = {},
): Promise<MosquittoProcess> {
  let extraConfig = extraConfigIn;
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'ef-mosquitto-'));
  if (options.dynsecAdmin) {
    // Mosquitto's dynamic-security plugin, with one admin (the hub) that manages device clients.
    const file = join(dir, 'dynsec.json');
    await new Promise<void>((resolve, reject) => {
      const p = spawn(
        '/usr/bin/mosquitto_ctrl',
        [
          'dynsec',
          'init',
          file,
          options.dynsecAdmin?.username ?? 'admin',
          options.dynsecAdmin?.password ?? '',
        ],
        { stdio: 'ignore' },
      );
      p.on('error', reject);
      p.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`mosquitto_ctrl dynsec init exited ${code}`)),
      );
    });
    extraConfig += `plugin /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so\nplugin_opt_config_file ${file}\n`;
  }
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(
    conf,
    // Run as the test's user: as root, mosquitto would switch to a user that cannot read this temp dir.
    `user ${process.getuid?.() === 0 ? 'root' : (process.env.USER ?? 'mosquitto')}\nlistener ${port} 127.0.0.1\npersistence ${options.persistent ? `true\npersistence_location ${dir}/\nautosave_interval 1` : 'false'}\nlog_dest stderr\nlog_type error\n${extraConfig}`,
  );
  let child: ReturnType<typeof spawn> | undefined;
  const url = `mqtt://127.0.0.1:${port}`;
  const handle: MosquittoProcess = {
    url,
    port,
    dir,
    async start() {
      child = spawn('/usr/sbin/mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
      await waitFor(() => tcpReachable('127.0.0.1', port, 300), `mosquitto on ${port}`, 10_000);
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null) return;
      await new Promise<void>((done) => {
        c.once('exit', () => done());
        c.kill('SIGTERM');
      });
    },
  };
  await handle.start();
  return handle;
}
