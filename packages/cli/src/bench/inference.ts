/**
 * The agent's inference path — local HTTP (KServe v2 JSON), input checks, the session, inference
 * metrics and drift statistics — against a bare onnxruntime-node `session.run` on the same model
 * bytes with the agent's session options, in this process.
 */
import * as ort from 'onnxruntime-node';
import { deployCnn, inferOverHttp, prepareAgentSetup, startEnrolledAgent } from './agent-harness.ts';
import { type BenchModule, latencies, percentile, row } from './types.ts';

export const inferenceBench: BenchModule = {
  name: 'inference',
  title: 'Agent inference path vs bare onnxruntime-node',
  async run(ctx) {
    const count = ctx.quick ? 100 : 1000;
    const setup = await prepareAgentSetup(ctx.progress);
    ctx.progress('starting an agent process and rolling the CNN out…');
    const agent = await startEnrolledAgent(setup, ctx.cliPath);
    // The agent's options (agent/src/runtime/onnx.ts): one intra-op thread, full graph optimisation.
    const session = await ort.InferenceSession.create(setup.artifact, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
    });
    try {
      await deployCnn(setup, agent);
      const bare = () => session.run({ image: new ort.Tensor('float32', setup.input, setup.shape) });
      const http = () => inferOverHttp(agent, setup.body);
      // Alternate blocks of 50 so background load on the shared machine falls on both alike.
      const agentMs: number[] = [];
      const bareMs: number[] = [];
      await latencies(0, 30, http);
      await latencies(0, 30, bare);
      for (let done = 0; done < count; done += 50) {
        ctx.progress(`${done}/${count} requests each way`);
        agentMs.push(...(await latencies(50, 0, http)));
        bareMs.push(...(await latencies(50, 0, bare)));
      }
      const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
      const [a50, b50] = [percentile(agentMs, 0.5), percentile(bareMs, 0.5)];
      return {
        name: 'inference',
        title: this.title,
        rows: [
          row('p50 latency', a50, 'ms', { baseline: b50, target: 'ratio ≤ 1.10', met: a50 <= 1.1 * b50 }),
          row('p99 latency', percentile(agentMs, 0.99), 'ms', { baseline: percentile(bareMs, 0.99) }),
          row('throughput (one client, sequential)', 1000 / mean(agentMs), 'req/s', {
            baseline: 1000 / mean(bareMs),
          }),
          row('added per request (p50 difference)', a50 - b50, 'ms'),
        ],
        skipped: [],
        notes: [
          `CNN of ${setup.parameterCount.toLocaleString('en-US')} parameters, fp32, input 1×3×32×32; ${count} requests each way in alternating blocks of 50.`,
          'Agent: a separate `edgefleet agent` process, POST /v2/models/{name}/infer with JSON over a keep-alive node:http client.',
          'Baseline: InferenceSession.run in the bench process, same bytes, same session options (1 intra-op thread).',
        ],
      };
    } finally {
      await session.release();
      await agent.stop();
      await setup.cleanup();
    }
  },
};
