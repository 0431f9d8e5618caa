/**
 * An agent as users run it: a separate `edgefleet agent` process enrolled with an in-process hub,
 * and the 1 M-parameter CNN published and rolled out to it. Used by the inference and footprint
 * benchmarks.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent as HttpAgent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BenchHub, startBenchHub } from './hub.ts';
import { until } from './types.ts';

export const MODEL = 'bench-cnn';

export interface AgentProcess {
  child: ChildProcess;
  /** http://127.0.0.1:PORT/v2 */
  inference: string;
  /** From spawn to the "agent ready" log line. */
  readyMs: number;
  rssMb(): Promise<number>;
  stop(): Promise<void>;
}

/** Spawn `edgefleet agent …` (after `nodeFlags`, if any) and wait for its "agent ready" line. */
export async function spawnAgent(
  cliPath: string,
  args: string[],
  nodeFlags: readonly string[] = [],
): Promise<AgentProcess> {
  const t0 = performance.now();
  // EDGEFLEET_BENCH_AGENT_FLAGS: extra node flags for the agent (e.g. --cpu-prof, which NODE_OPTIONS refuses).
  const flags = (process.env.EDGEFLEET_BENCH_AGENT_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeFlags, ...flags, cliPath, 'agent', '--port', '0', ...args], {
    env: { ...process.env, EDGEFLEET_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const inference = await new Promise<string>((resolve, reject) => {
    const onLine = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        tail.push(line);
        if (tail.length > 20) tail.shift();
        if (!line.startsWith('{')) continue;
        try {
          const log = JSON.parse(line) as { msg?: string; inference?: string };
          if (log.msg === 'agent ready' && log.inference) resolve(log.inference);
        } catch {
          // not a log line
        }
      }
    };
    child.stdout?.on('data', onLine);
    child.stderr?.on('data', onLine);
    child.once('exit', (code) =>
      reject(new Error(`agent exited (${code}) before ready:\n${tail.join('\n')}`)),
    );
  });
  const readyMs = performance.now() - t0;
  return {
    child,
    inference,
    readyMs,
    async rssMb() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface AgentSetup {
  hub: BenchHub;
  dataDir: string;
  /** The CNN's ONNX bytes as the agent runs them (the hub's fp32 CPU artifact). */
  artifact: Uint8Array;
  /** One input sample as the request body of the v2 infer route, and as a tensor. */
  body: string;
  input: Float32Array;
  shape: number[];
  parameterCount: number;
  cleanup(): Promise<void>;
}

/** Publish `model` (ONNX) as `name`@1.0.0 and return the ONNX artifact the hub made for CPUs. */
export async function publishModel(hub: BenchHub, name: string, model: Uint8Array): Promise<Uint8Array> {
  await hub.api('PUT', `/models/${name}/versions/1.0.0`, model);
  const version = await hub.api<{ files: { file: string; sha256: string; kind: string }[] }>(
    'GET',
    `/models/${name}/versions/1.0.0`,
  );
  const file = version.files.find((f) => f.kind === 'artifact' && f.file.endsWith('.onnx'));
  if (!file) throw new Error(`the published version of ${name} has no ONNX artifact`);
  const response = await fetch(`${hub.url}/api/v1/artifacts/${file.sha256}`, {
    headers: { authorization: `Bearer ${hub.adminToken}` },
  });
  return new Uint8Array(await response.arrayBuffer());
}

/** Hub up, CNN built and published; no agent yet. */
export async function prepareAgentSetup(progress: (text: string) => void): Promise<AgentSetup> {
  const { buildCnnClassifier, cnnSamples, inspectOnnx } = await import('@edgefleet/converters');
  progress('building the CNN classifier…');
  const model = await buildCnnClassifier();
  const hub = await startBenchHub();
  const dataDir = await mkdtemp(join(tmpdir(), 'edgefleet-bench-agent-'));
  progress('publishing it to the hub…');
  const artifact = await publishModel(hub, MODEL, model);
  const sample = cnnSamples(1, 7).samples[0]?.image;
  if (!sample) throw new Error('no CNN sample');
  const input = sample.data as Float32Array;
  const shape = [...sample.shape];
  const body = JSON.stringify({
    inputs: [{ name: 'image', shape, datatype: 'FP32', data: Array.from(input) }],
  });
  return {
    hub,
    dataDir,
    artifact,
    body,
    input,
    shape,
    parameterCount: inspectOnnx(model).parameterCount,
    async cleanup() {
      await hub.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Enroll and start an agent process (tagged "bench"); by default in the setup's data directory. */
export async function startEnrolledAgent(
  setup: AgentSetup,
  cliPath: string,
  options: { dataDir?: string; nodeFlags?: readonly string[] } = {},
): Promise<AgentProcess> {
  const { token } = await setup.hub.api<{ token: string }>('POST', '/enrollment-tokens', {
    uses: 1,
    tags: ['bench'],
  });
  return spawnAgent(
    cliPath,
    [
      '--hub',
      setup.hub.url,
      '--enroll-token',
      token,
      '--data',
      options.dataDir ?? setup.dataDir,
      '--name',
      'bench-agent',
    ],
    options.nodeFlags,
  );
}

/** Roll the CNN out to the bench agent and wait until its inference route serves it. */
export async function deployCnn(setup: AgentSetup, agent: AgentProcess): Promise<void> {
  await deployModel(setup.hub, agent, MODEL);
}

/** Roll a published model (`name`@1.0.0) out to the bench agent and wait until it serves it. */
export async function deployModel(hub: BenchHub, agent: AgentProcess, name: string): Promise<void> {
  await hub.api('POST', '/rollouts', { model: name, version: '1.0.0', target: { tags: ['bench'] } });
  await until(
    async () => (await fetch(`${agent.inference}/models/${name}`).catch(() => undefined))?.ok === true,
    `the agent to serve ${name}`,
    120_000,
    100,
  );
}

/** A request body of KServe's binary tensor data extension (one FP32 input, binary outputs asked for). */
export function binaryInferBody(
  input: string,
  data: Float32Array,
  shape: number[],
): { body: Buffer; headers: Record<string, string> } {
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: input, shape, datatype: 'FP32', parameters: { binary_data_size: data.byteLength } }],
      parameters: { binary_data_output: true },
    }),
  );
  return {
    body: Buffer.concat([header, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]),
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(header.length),
    },
  };
}

// node:http with keep-alive rather than fetch: undici's per-request cost would be charged to the agent.
const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 1 });

/**
 * One POST over keep-alive node:http; resolves with the response's size in bytes, throws on a non-200.
 * `url` is the full URL (the agent's infer route, or the floor's echo server).
 */
export function postOverHttp(
  url: string,
  body: string | Buffer,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent: keepAlive, headers }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (res.statusCode !== 200) chunks.push(c);
      });
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(size)
          : reject(
              new Error(`POST ${url}: ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 300)}`),
            ),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One inference over the agent's local HTTP API (the CNN unless `model` is given); throws on a non-200. */
export function inferOverHttp(
  agent: AgentProcess,
  body: string | Buffer,
  options: { model?: string; headers?: Record<string, string> } = {},
): Promise<number> {
  return postOverHttp(`${agent.inference}/models/${options.model ?? MODEL}/infer`, body, options.headers);
}
