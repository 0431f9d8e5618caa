/**
 * The command list of the on-device bundle (release.ts swaps it in for packages/cli's list): only
 * `agent`, wrapped so a release on probation confirms itself once it has served for a while. The
 * launcher reverts a release that crashes before that.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { confirmWhenHealthy } from '../../agent/src/self-update.ts';
import type { Command } from '../../packages/cli/src/command.ts';
import { agentCommand } from '../../packages/cli/src/commands/agent.ts';

const deviceAgent: Command = {
  ...agentCommand,
  async run(ctx) {
    const data = resolve(typeof ctx.values.data === 'string' ? ctx.values.data : 'edgefleet-agent');
    const state = process.env.EDGEFLEET_STATE ?? dirname(data);
    const port = typeof ctx.values.port === 'string' ? ctx.values.port : '8081';
    const afterMs = Number(process.env.EDGEFLEET_CONFIRM_AFTER_S ?? 120) * 1000;
    // Self-updates are staged where launch.sh looks for them.
    ctx.values['releases-dir'] ??= join(state, 'releases');
    const cancel = confirmWhenHealthy({
      releasesDir: join(state, 'releases'),
      afterMs,
      // Enrolled, and (when its port is fixed) answering: a release that got this far works.
      healthy: async () =>
        existsSync(join(data, 'credentials.json')) &&
        (port === '0' || (await fetch(`http://127.0.0.1:${port}/v2/health/live`)).ok),
      onConfirmed: (version) => process.stderr.write(`edgefleet: release ${version} confirmed healthy\n`),
    });
    try {
      return await agentCommand.run(ctx);
    } finally {
      cancel();
    }
  },
};

export const commands: Command[] = [deviceAgent];
