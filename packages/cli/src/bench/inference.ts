/**
 * The agent's inference path — local HTTP (KServe v2, JSON and the binary tensor data extension),
 * input checks, the session, inference metrics and drift statistics — against a bare
 * onnxruntime-node `session.run` on the same model bytes with the agent's session options, in this
 * process. Two models: the tiny 1.15 M-parameter CNN (0.2 ms: the agent's fixed cost per request
 * shows) and a MobileNet v1 (4.2 M parameters, ~570 M multiply-adds: compute dominates). The floor is
 * a bare `node:http` server in another process that reads the same request body and answers with as
 * many bytes as the agent does: what any HTTP server costs over loopback, before any inference.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import {
  binaryInferBody,
  deployCnn,
  deployModel,
  inferOverHttp,
  postOverHttp,
  prepareAgentSetup,
  publishModel,
  startEnrolledAgent,
} from './agent-harness.ts';
import { buildMobileNet, MOBILENET_SIZE, mobileNetInput } from './mobilenet.ts';
import { type BenchModule, type BenchRow, latencies, percentile, row } from './types.ts';

const MOBILENET = 'bench-mobilenet';

/** A bare node:http server (separate process): reads the whole body, answers `x-reply-bytes` bytes. */
const ECHO_SERVER = `
const http = require('node:http');
const replies = new Map();
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    Buffer.concat(chunks);
    const n = Number(req.headers['x-reply-bytes'] || 2);
    let body = replies.get(n);
    if (!body) replies.set(n, (body = Buffer.alloc(n, 0x20)));
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': n });
    res.end(body);
  });
}).listen(0, '127.0.0.1', function () { console.log(this.address().port); });
`;

async function startEcho(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once('data', (c: Buffer) => resolve(Number(c.toString().trim())));
    child.once('exit', (code) => reject(new Error(`echo server exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}/`, child };
}

interface Case {
  label: string;
  model: string;
  artifact: Uint8Array;
  input: Float32Array;
  shape: number[];
  json: string;
  count: number;
  block: number;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

async function measure(
  c: Case,
  agent: Parameters<typeof inferOverHttp>[0],
  echoUrl: string,
  progress: (text: string) => void,
): Promise<BenchRow[]> {
  // The agent's options (agent/src/runtime/onnx.ts): one intra-op thread, full graph optimisation.
  const session = await ort.InferenceSession.create(c.artifact, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
  });
  try {
    const binary = binaryInferBody('image', c.input, c.shape);
    const json = () => inferOverHttp(agent, c.json, { model: c.model });
    const bin = () => inferOverHttp(agent, binary.body, { model: c.model, headers: binary.headers });
    const bare = () => session.run({ image: new ort.Tensor('float32', c.input, c.shape) });
    // The floor answers as many bytes as the agent does for the same request.
    const [jsonReply, binReply] = [await json(), await bin()];
    const floorJson = () =>
      postOverHttp(echoUrl, c.json, {
        'content-type': 'application/json',
        'x-reply-bytes': String(jsonReply),
      });
    const floorBin = () =>
      postOverHttp(echoUrl, binary.body, { ...binary.headers, 'x-reply-bytes': String(binReply) });
    const ways = { json, bin, bare, floorJson, floorBin };
    const ms: Record<keyof typeof ways, number[]> = {
      json: [],
      bin: [],
      bare: [],
      floorJson: [],
      floorBin: [],
    };
    for (const fn of Object.values(ways)) await latencies(0, Math.min(30, c.count), fn);
    // Alternate blocks so background load on the shared machine falls on every way alike.
    for (let done = 0; done < c.count; done += c.block) {
      progress(`${c.label}: ${done}/${c.count} requests each way`);
      for (const [name, fn] of Object.entries(ways))
        ms[name as keyof typeof ways].push(...(await latencies(c.block, 0, fn)));
    }
    const p50 = (k: keyof typeof ways) => percentile(ms[k], 0.5);
    const p99 = (k: keyof typeof ways) => percentile(ms[k], 0.99);
    const target = 'ratio ≤ 1.10';
    return [
      row(`${c.label}, JSON: p50 latency`, p50('json'), 'ms', {
        baseline: p50('bare'),
        target,
        met: p50('json') <= 1.1 * p50('bare'),
      }),
      row(`${c.label}, JSON: p99 latency`, p99('json'), 'ms', { baseline: p99('bare') }),
      row(`${c.label}, binary: p50 latency`, p50('bin'), 'ms', {
        baseline: p50('bare'),
        target,
        met: p50('bin') <= 1.1 * p50('bare'),
      }),
      row(`${c.label}, binary: p99 latency`, p99('bin'), 'ms', { baseline: p99('bare') }),
      row(`${c.label}, binary: throughput (one client, sequential)`, 1000 / mean(ms.bin), 'req/s', {
        baseline: 1000 / mean(ms.bare),
      }),
      row(`${c.label}, JSON: added per request (p50 difference)`, p50('json') - p50('bare'), 'ms'),
      row(`${c.label}, binary: added per request (p50 difference)`, p50('bin') - p50('bare'), 'ms'),
      row(`${c.label}, floor: bare node:http round trip, JSON body (p50)`, p50('floorJson'), 'ms'),
      row(`${c.label}, floor: bare node:http round trip, binary body (p50)`, p50('floorBin'), 'ms'),
      // The best any HTTP server could do: the bare run plus the bare round trip.
      row(
        `${c.label}, floor: bare run + binary round trip (p50s added)`,
        p50('bare') + p50('floorBin'),
        'ms',
        {
          baseline: p50('bare'),
        },
      ),
    ];
  } finally {
    await session.release();
  }
}

export const inferenceBench: BenchModule = {
  name: 'inference',
  title: 'Agent inference path vs bare onnxruntime-node',
  async run(ctx) {
    const setup = await prepareAgentSetup(ctx.progress);
    ctx.progress('building a MobileNet v1 (1.0, 224×224) and publishing it…');
    const { inspectOnnx } = await import('@edgefleet/converters');
    const mobileNet = await buildMobileNet();
    const mobileNetParams = inspectOnnx(mobileNet).parameterCount;
    const mobileNetArtifact = await publishModel(setup.hub, MOBILENET, mobileNet);
    ctx.progress('starting an agent process and rolling both models out…');
    const agent = await startEnrolledAgent(setup, ctx.cliPath);
    const echo = await startEcho();
    try {
      await deployCnn(setup, agent);
      await deployModel(setup.hub, agent, MOBILENET);
      const image = mobileNetInput();
      const cases: Case[] = [
        {
          label: 'CNN 1.15 M',
          model: 'bench-cnn',
          artifact: setup.artifact,
          input: setup.input,
          shape: setup.shape,
          json: setup.body,
          count: ctx.quick ? 100 : 1000,
          block: 50,
        },
        {
          label: 'MobileNet v1 4.2 M',
          model: MOBILENET,
          artifact: mobileNetArtifact,
          input: image.data,
          shape: image.shape,
          json: JSON.stringify({
            inputs: [{ name: 'image', shape: image.shape, datatype: 'FP32', data: Array.from(image.data) }],
          }),
          count: ctx.quick ? 30 : 200,
          block: 10,
        },
      ];
      const rows: BenchRow[] = [];
      for (const c of cases) rows.push(...(await measure(c, agent, echo.url, ctx.progress)));
      const cnnJson = Buffer.byteLength(setup.body);
      const mnJson = Buffer.byteLength(cases[1]?.json ?? '');
      return {
        name: 'inference',
        title: this.title,
        rows,
        skipped: [],
        notes: [
          `CNN 1.15 M: buildCnnClassifier, ${setup.parameterCount.toLocaleString('en-US')} parameters, fp32, input 1×3×32×32 (JSON body ${(cnnJson / 1024).toFixed(0)} KB, binary 12 KB); ${cases[0]?.count} requests each way in alternating blocks of 50.`,
          `MobileNet v1 4.2 M: the mobilenet_v1_1.0_224 architecture built with the converters' ONNX builder (packages/cli/src/bench/mobilenet.ts), ${mobileNetParams.toLocaleString('en-US')} parameters, fp32, input 1×3×${MOBILENET_SIZE}×${MOBILENET_SIZE} (JSON body ${(mnJson / 1048576).toFixed(1)} MB, binary 588 KB), 1000-way softmax output; ${cases[1]?.count} requests each way in alternating blocks of 10.`,
          'Agent: a separate `edgefleet agent` process, POST /v2/models/{name}/infer over a keep-alive node:http client; JSON: `data` in, `data` out; binary: KServe binary tensor data extension in and out (binary_data_output).',
          'Baseline: InferenceSession.run in the bench process, same bytes, same session options (1 intra-op thread).',
          'Floor: a bare node:http server in a separate process that reads the same body and answers as many bytes as the agent did; "bare run + round trip" is the lowest latency any HTTP server could reach, so its ratio is the best reachable ratio.',
        ],
      };
    } finally {
      echo.child.kill();
      await agent.stop();
      await setup.cleanup();
    }
  },
};
