/**
 * Agent footprint: resident memory of an `edgefleet agent` process idle (enrolled, connected, no
 * model) and with the 1 M-parameter CNN loaded, and the time from spawn to "agent ready" on first
 * start (enrollment included) and on a restart with the model installed (loaded from disk before
 * ready). The baseline of RSS is a bare `node -e` process idling: what Node alone costs.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import {
  deployCnn,
  inferOverHttp,
  prepareAgentSetup,
  spawnAgent,
  startEnrolledAgent,
} from './agent-harness.ts';
import { type BenchModule, row } from './types.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function bareNodeRssMb(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  await sleep(1000);
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
  child.kill();
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

export const footprintBench: BenchModule = {
  name: 'footprint',
  title: 'Agent footprint: RSS and start-up',
  async run(ctx) {
    const settleMs = ctx.quick ? 2000 : 5000;
    const setup = await prepareAgentSetup(ctx.progress);
    const started: { stop(): Promise<void> }[] = [];
    try {
      ctx.progress('first start (enrollment)…');
      const first = await startEnrolledAgent(setup, ctx.cliPath);
      started.push(first);
      await sleep(settleMs);
      const idle = await first.rssMb();
      ctx.progress('rolling the CNN out…');
      await deployCnn(setup, first);
      for (let i = 0; i < 50; i++) await inferOverHttp(first, setup.body);
      await sleep(settleMs);
      const withModel = await first.rssMb();
      await first.stop();
      ctx.progress('restart with the model installed…');
      const restart = await spawnAgent(ctx.cliPath, ['--data', setup.dataDir]);
      started.push(restart);
      await restart.stop();
      const node = await bareNodeRssMb();
      return {
        name: 'footprint',
        title: this.title,
        rows: [
          row('idle RSS (enrolled, connected, no model)', idle, 'MB', {
            baseline: node,
            target: '< 80 MB',
            met: idle < 80,
          }),
          row('RSS with the CNN loaded (after 50 requests)', withModel, 'MB', { baseline: node }),
          row('start-up to ready, first start (enrolls)', first.readyMs, 'ms'),
          row('start-up to ready, restart (loads the CNN)', restart.readyMs, 'ms'),
        ],
        skipped: [],
        notes: [
          `RSS from /proc after ${settleMs / 1000} s settling; baseline: an idle \`node -e\` process. Start-up timed from spawn to the "agent ready" log line.`,
        ],
      };
    } finally {
      for (const agent of started) await agent.stop();
      await setup.cleanup();
    }
  },
};
