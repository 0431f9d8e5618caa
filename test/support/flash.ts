/**
 * Helpers for the `edgefleet flash` tests: the per-arch runtime (prepared from the npm registry when
 * missing, skipping or failing like a missing service), fake root trees to install into, and
 * processes whose JSON log lines can be awaited.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { convertModel, mlpModel, runOnnx } from '@edgefleet/converters';
import { expect } from 'vitest';
import { openTflite } from '../../converters/src/tflite/interpreter.ts';
import { prepareRuntime } from '../../scripts/flash/prepare.mjs';

export { elfMachine } from '../../scripts/flash/prepare.mjs';

import { hubApi, runCli } from './processes.ts';
import { projectRoot, requireServices, type ServiceCheck, waitFor } from './services.ts';

/** The flash runtime for `arch`, installed from the npm registry if needed. */
export function flashRuntime(arch: 'arm64' | 'x64'): ServiceCheck {
  try {
    prepareRuntime(arch, { quiet: true, root: projectRoot });
    return { available: true, reason: '' };
  } catch (error) {
    const reason = `the linux-${arch} flash runtime could not be installed: ${(error as Error).message}`;
    if (requireServices) throw new Error(`EDGEFLEET_REQUIRE_SERVICES=1 but ${reason}`);
    console.warn(`skipping flash tests for ${arch}: ${reason}`);
    return { available: false, reason };
  }
}

export interface Flashed {
  release: { version: string; arch: string; node: string; onnxruntime: string };
  packageDir: string;
  archive: string;
  archiveBytes: number;
  releaseManifest: string;
  bootDir: string;
  warnings: string[];
}

/** Run `edgefleet flash --json` and return its result. */
export async function flashPackage(args: string[]): Promise<Flashed> {
  const result = await runCli(['flash', '--json', ...args]);
  if (result.code !== 0) throw new Error(`edgefleet flash exited ${result.code}: ${result.stderr}`);
  return JSON.parse(result.stdout) as Flashed;
}

/** A directory laid out like a system root, with this machine's account files to add users to. */
export async function fakeRoot(dir: string): Promise<string> {
  await mkdir(join(dir, 'etc'), { recursive: true });
  for (const f of ['passwd', 'group', 'shadow', 'gshadow'])
    await copyFile(join('/etc', f), join(dir, 'etc', f));
  return dir;
}

/** The settings install.sh wrote to `root`'s /etc/edgefleet/agent.env, as environment variables. */
export async function installedEnv(root: string): Promise<Record<string, string>> {
  const text = await readFile(join(root, 'etc/edgefleet/agent.env'), 'utf8');
  return Object.fromEntries(
    text
      .split('\n')
      .filter((l) => /^[A-Z_]+=/.test(l))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

export interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a program to completion. */
export function exec(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Exec> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `systemd-analyze verify` of the unit installed in `root`, with `root`'s /opt/edgefleet mounted at /opt/edgefleet in a private mount namespace. */
export function verifyUnit(root: string): Promise<Exec> {
  const unit = join(root, 'etc/systemd/system/edgefleet-agent.service');
  return exec('unshare', [
    '--mount',
    'sh',
    '-c',
    `mount -t tmpfs none /opt && mkdir /opt/edgefleet && mount --bind "${root}/opt/edgefleet" /opt/edgefleet && systemd-analyze verify "${unit}"`,
  ]);
}

export interface LoggedProc {
  child: ChildProcess;
  output: string[];
  waitForLog(msg: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
  kill(): Promise<void>;
}

/** Start a long-running process and keep its output; JSON log lines can be awaited by `msg`. */
export function startLogged(cmd: string, args: string[], env: Record<string, string> = {}): LoggedProc {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) output.push(line);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output,
    exited,
    async waitForLog(msg, timeoutMs = 120_000) {
      let found: Record<string, unknown> | undefined;
      await waitFor(
        () => {
          if (child.exitCode !== null)
            throw new Error(`exited (${child.exitCode}) before "${msg}":\n${output.slice(-30).join('\n')}`);
          for (const line of output) {
            if (!line.startsWith('{')) continue;
            try {
              const parsed = JSON.parse(line) as Record<string, unknown>;
              if (parsed.msg === msg) found = parsed;
            } catch {
              // not a log line
            }
          }
          return found !== undefined;
        },
        `log "${msg}"`,
        timeoutMs,
        200,
      );
      return found as Record<string, unknown>;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Publish a small classifier as m@1.0.0, deploy it to the whole fleet with the CLI, wait until the
 * agent at `inferenceUrl` serves it, and check one answer against onnxruntime on this machine.
 */
export async function deployAndCheckInference(
  hub: { url: string; adminToken: string },
  dir: string,
  inferenceUrl: string,
  options: { seed: number; readyTimeoutMs: number },
): Promise<void> {
  const model = mlpModel({ inputs: 4, hidden: [8], outputs: 3, softmax: true, seed: options.seed });
  await writeFile(join(dir, 'm.onnx'), model);
  const cli = { EDGEFLEET_HUB: hub.url, EDGEFLEET_TOKEN: hub.adminToken };
  expect(
    (await runCli(['publish', join(dir, 'm.onnx'), '--model', 'm', '--version', '1.0.0'], cli)).code,
  ).toBe(0);
  expect((await runCli(['deploy', 'm@1.0.0', '--to', 'all'], cli)).code).toBe(0);
  await waitFor(
    async () => (await fetch(`${inferenceUrl}/models/m/ready`)).ok,
    'model ready',
    options.readyTimeoutMs,
    1000,
  );
  const input = [0.5, -1, 2, 0.25];
  const response = await fetch(`${inferenceUrl}/models/m/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: input }] }),
  });
  expect(response.status).toBe(200);
  const body = (await response.json()) as { outputs: { data: number[] }[] };
  const expected = await runOnnx(model, {
    input: { dtype: 'float32', shape: [1, 4], data: Float32Array.from(input) },
  });
  const want = Array.from(expected.output?.data as Float32Array);
  expect(body.outputs[0]?.data).toHaveLength(want.length);
  for (const [i, v] of (body.outputs[0]?.data ?? []).entries()) expect(v).toBeCloseTo(want[i] as number, 5);
}

export interface TinyTflite {
  path: string;
  bytes: Uint8Array;
  onnx: Uint8Array;
  /** A quantized input and the scale / zero point of the model's input and output. */
  input: Int8Array;
  inQ: { scale: number; zeroPoint: number };
  outQ: { scale: number; zeroPoint: number };
}

/** A small int8 classifier as `convert --target edgetpu` builds its CPU twin, written to `dir`. */
export async function tinyTflite(dir: string, seed: number): Promise<TinyTflite> {
  const onnx = mlpModel({ inputs: 4, hidden: [8], outputs: 3, softmax: true, seed });
  const converted = await convertModel(onnx, { targets: ['edgetpu'] });
  const twin = converted.artifacts.find((a) => a.entry.file.endsWith('model_int8.tflite'));
  if (!twin) throw new Error('the conversion built no int8 .tflite');
  const path = join(dir, `tiny_int8_${seed}.tflite`);
  await writeFile(path, twin.bytes);
  return {
    path,
    bytes: twin.bytes,
    onnx,
    input: Int8Array.from([29, -39, 97, 17]),
    inQ: twin.entry.inputs?.[0]?.quantization as { scale: number; zeroPoint: number },
    outQ: twin.entry.outputs?.[0]?.quantization as { scale: number; zeroPoint: number },
  };
}

/**
 * A `node -e` script doing what agent/src/runtime/tflite.ts does, from the bundle's place in the
 * package `release`: resolve tfjs-tflite-node/package.json, require the binding by path, run
 * `model` once on `input`, and construct coral-tflite-delegate's CoralDelegate. Prints JSON:
 * { arch, pkg, coral, delegate, output }.
 */
export function packagedTfliteScript(release: string, model: TinyTflite): string {
  return `
    const { createRequire } = require('node:module');
    const { dirname, join } = require('node:path');
    const req = createRequire(${JSON.stringify(join(release, 'edgefleet.mjs'))});
    const pkg = req.resolve('tfjs-tflite-node/package.json');
    const { Interpreter } = req(join(dirname(pkg), 'build/Release/node_tflite_binding.node'));
    const bytes = require('node:fs').readFileSync(${JSON.stringify(model.path)});
    const it = new Interpreter(new Uint8Array(bytes).buffer, { threads: 1 });
    it.getInputs()[0].data().set(Int8Array.from(${JSON.stringify(Array.from(model.input))}));
    if (!it.infer()) throw new Error('infer() failed');
    const { CoralDelegate } = req('coral-tflite-delegate');
    const delegate = new CoralDelegate({}, '/usr/lib/libedgetpu.so.1');
    console.log(JSON.stringify({
      arch: process.arch,
      pkg,
      coral: req.resolve('coral-tflite-delegate'),
      delegate: delegate.node.path,
      output: Array.from(it.getOutputs()[0].data()),
    }));`;
}

/** Check what packagedTfliteScript printed: loaded from `release`, and the model's answer. */
export async function checkPackagedTflite(release: string, model: TinyTflite, stdout: string): Promise<void> {
  const out = JSON.parse(stdout) as { pkg: string; coral: string; delegate: string; output: number[] };
  // Loaded from the package, not from this checkout's node_modules.
  expect(out.pkg).toBe(join(release, 'node_modules/tfjs-tflite-node/package.json'));
  expect(out.coral.startsWith(join(release, 'node_modules/coral-tflite-delegate/'))).toBe(true);
  expect(out.delegate).toBe('/usr/lib/libedgetpu.so.1');
  // The same answer as this checkout's TFLite, and close to the float ONNX model's.
  const reference = openTflite(model.bytes).run({
    input: { dtype: 'int8', shape: [1, 4], data: model.input },
  });
  expect(out.output).toEqual(Array.from(reference.output?.data as Int8Array));
  const { inQ, outQ } = model;
  const floats = Float32Array.from(model.input, (v) => inQ.scale * (v - inQ.zeroPoint));
  const expected = await runOnnx(model.onnx, { input: { dtype: 'float32', shape: [1, 4], data: floats } });
  const want = Array.from(expected.output?.data as Float32Array);
  expect(out.output).toHaveLength(want.length);
  for (const [i, v] of out.output.entries())
    expect(outQ.scale * (v - outQ.zeroPoint)).toBeCloseTo(want[i] as number, 1);
}

export type ReportedRuntime = { name: string; available: boolean; reason?: string };

/** The runtimes device `name` reported to the hub (waits until it has reported them). */
export async function reportedRuntimes(
  hub: { url: string; adminToken: string },
  name: string,
): Promise<ReportedRuntime[]> {
  const api = hubApi(hub.url, hub.adminToken);
  let runtimes: ReportedRuntime[] = [];
  await waitFor(
    async () => {
      const listed = await api<{
        devices: { name: string; reported: { runtimes?: ReportedRuntime[] } | null }[];
      }>('GET', '/devices');
      runtimes = listed.devices.find((d) => d.name === name)?.reported?.runtimes ?? [];
      return runtimes.length > 0;
    },
    `${name} reported its runtimes`,
    60_000,
  );
  return runtimes;
}

/** The packaged agent has its TFLite backends: CPU TFLite available, Edge TPU missing only libedgetpu. */
export function expectTfliteRuntimes(runtimes: ReportedRuntime[]): void {
  expect(runtimes.find((r) => r.name === 'tflite')).toEqual({ name: 'tflite', available: true });
  const edgeTpu = runtimes.find((r) => r.name === 'tflite+edgetpu');
  expect(edgeTpu?.available).toBe(false);
  expect(edgeTpu?.reason).toMatch(/libedgetpu\.so\.1 not found/);
}
