/**
 * Agent footprint: resident memory of an `edgefleet agent` process idle (enrolled, connected, no
 * model) and with the 1 M-parameter CNN loaded, and the time from spawn to "agent ready" on first
 * start (enrollment included) and on a restart with the model installed (loaded from disk before
 * ready). Idle is measured twice, the same way: started as `node edgefleet agent`, and with the node
 * flags a flashed device's launcher passes (scripts/flash/templates/launch.sh). The baseline of RSS
 * is a bare `node -e` process idling: what Node alone costs.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  deployCnn,
  inferOverHttp,
  prepareAgentSetup,
  spawnAgent,
  startEnrolledAgent,
} from './agent-harness.ts';
import { type BenchModule, row } from './types.ts';

/** The launcher's default node flags (launch.sh, `EDGEFLEET_NODE_OPTIONS`; a test keeps them equal). */
export const FLASHED_NODE_FLAGS = ['--max-semi-space-size=1'];

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
      // Beside it, before any rollout, a second agent started as a flashed device's launcher starts
      // it (its node flags); both idle the same settling time from the second one's ready.
      ctx.progress('first start with the launcher’s node flags…');
      const flashedDir = await mkdtemp(join(tmpdir(), 'edgefleet-bench-agent-flashed-'));
      let idle: number;
      let idleFlashed: number;
      try {
        const flashed = await startEnrolledAgent(setup, ctx.cliPath, {
          dataDir: flashedDir,
          nodeFlags: FLASHED_NODE_FLAGS,
        });
        started.push(flashed);
        await sleep(settleMs);
        idle = await first.rssMb();
        idleFlashed = await flashed.rssMb();
        await flashed.stop();
      } finally {
        await rm(flashedDir, { recursive: true, force: true });
      }
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
          row(`idle RSS as flashed (node ${FLASHED_NODE_FLAGS.join(' ')})`, idleFlashed, 'MB', {
            baseline: node,
            target: '< 80 MB',
            met: idleFlashed < 80,
          }),
          row('RSS with the CNN loaded (after 50 requests)', withModel, 'MB', { baseline: node }),
          row('start-up to ready, first start (enrolls)', first.readyMs, 'ms'),
          row('start-up to ready, restart (loads the CNN)', restart.readyMs, 'ms'),
        ],
        skipped: [],
        notes: [
          `RSS from /proc after ${settleMs / 1000} s settling; baseline: an idle \`node -e\` process. Start-up timed from spawn to the "agent ready" log line.`,
          `"as flashed": a second agent, enrolled beside the first before any rollout, started with the node flags scripts/flash/templates/launch.sh passes by default (${FLASHED_NODE_FLAGS.join(' ')}); the other rows are \`node edgefleet agent\` without flags.`,
        ],
      };
    } finally {
      for (const agent of started) await agent.stop();
      await setup.cleanup();
    }
  },
};
