/**
 * Hubs and agents as separate processes, started from the same CLI bundle users run. Each process's
 * output is kept, parsed for readiness lines, and printed when a test fails to help the reader.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { projectRoot, waitFor } from './services.ts';

export const CLI = join(projectRoot, 'packages/cli/bin/edgefleet.js');

export interface Proc {
  child: ChildProcess;
  output: string[];
  /** Resolves with the first JSON log line whose `msg` matches. */
  waitForLog(msg: string | RegExp, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resident memory of the process, from /proc. */
  rssMb(): Promise<number>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnCli(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: projectRoot,
    env: { ...process.env, EDGEFLEET_LOG_LEVEL: process.env.EDGEFLEET_LOG_LEVEL ?? 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const lines: Record<string, unknown>[] = [];
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      output.push(line);
      if (output.length > 5000) output.shift();
      if (line.startsWith('{')) {
        try {
          lines.push(JSON.parse(line));
        } catch {
          // not a log line
        }
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output,
    async waitForLog(msg, timeoutMs = 60_000) {
      let found: Record<string, unknown> | undefined;
      await waitFor(
        () => {
          if (child.exitCode !== null)
            throw new Error(
              `process exited (${child.exitCode}) before logging "${msg}":\n${output.slice(-30).join('\n')}`,
            );
          found = lines.find((l) => (typeof msg === 'string' ? l.msg === msg : msg.test(String(l.msg))));
          return found !== undefined;
        },
        `log "${msg}"`,
        timeoutMs,
      );
      return found as Record<string, unknown>;
    },
    async rssMb() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      return kb / 1024;
    },
    async kill(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      return exited;
    },
  };
}

/** Run a CLI command to completion; resolves with its exit code and output. */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      cwd: projectRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export interface HubProc extends Proc {
  url: string;
  mqttPort: number | undefined;
  adminToken: string;
}

export async function spawnHub(options: {
  dataDir: string;
  args?: string[];
  adminToken?: string;
  env?: Record<string, string>;
}): Promise<HubProc> {
  const adminToken = options.adminToken ?? `efa_e2e_${Math.random().toString(36).slice(2)}`;
  const proc = spawnCli(
    [
      'hub',
      '--port',
      '0',
      '--mqtt-port',
      '0',
      '--host',
      '127.0.0.1',
      '--data',
      options.dataDir,
      ...(options.args ?? []),
    ],
    { ...options.env, EDGEFLEET_ADMIN_TOKEN: adminToken },
  );
  const ready = await proc.waitForLog('hub ready');
  const listening = proc.output
    .map((l) => (l.startsWith('{') ? (JSON.parse(l) as { msg?: string; port?: number }) : {}))
    .find((l) => l.msg === 'embedded MQTT broker listening');
  return { ...proc, url: String(ready.url), mqttPort: listening?.port, adminToken };
}

export interface AgentProc extends Proc {
  inferenceUrl: string;
}

export async function spawnAgent(args: string[], env: Record<string, string> = {}): Promise<AgentProc> {
  const proc = spawnCli(['agent', '--port', '0', ...args], env);
  const ready = await proc.waitForLog('agent ready');
  return { ...proc, inferenceUrl: String(ready.inference) };
}

/** Enroll one new agent with a fresh single-use token and start it (`extra` flags appended). */
export async function enrollAgent(
  hub: { url: string; adminToken: string },
  dataDir: string,
  extra: string[] = [],
): Promise<AgentProc> {
  const api = hubApi(hub.url, hub.adminToken);
  const { token } = await api<{ token: string }>('POST', '/enrollment-tokens', { uses: 1 });
  return spawnAgent(['--hub', hub.url, '--enroll-token', token, '--data', dataDir, ...extra]);
}

/** A small authenticated JSON client for a hub's API. */
export function hubApi(url: string, token: string) {
  return async <T = unknown>(method: string, path: string, body?: unknown): Promise<T> => {
    const raw = body instanceof Uint8Array;
    const response = await fetch(`${url}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined && !raw ? { 'content-type': 'application/json' } : {}),
      },
      body: raw ? (body as Uint8Array<ArrayBuffer>) : body !== undefined ? JSON.stringify(body) : undefined,
    });
    const json = (await response.json().catch(() => undefined)) as T;
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };
}
