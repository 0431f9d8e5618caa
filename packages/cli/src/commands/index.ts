/** Every `edgefleet` command, in the order `edgefleet --help` lists them. */
import type { Command } from '../command.ts';
import { agentCommand } from './agent.ts';
import { agentReleaseCommand } from './agent-release.ts';
import { benchCommand } from './bench.ts';
import { convertCommand } from './convert.ts';
import { demoCommand } from './demo.ts';
import { deployCommand } from './deploy.ts';
import { devicesCommand } from './devices.ts';
import { driftCommand } from './drift.ts';
import { flashCommand } from './flash.ts';
import { hubCommand } from './hub.ts';
import { keysCommand } from './keys.ts';
import { lintEdgetpuCommand } from './lint-edgetpu.ts';
import { publishCommand } from './publish.ts';
import { rolloutsCommand } from './rollouts.ts';
import { soakCommand } from './soak.ts';
import { tokenCommand } from './token.ts';

export const commands: Command[] = [
  hubCommand,
  agentCommand,
  tokenCommand,
  keysCommand,
  convertCommand,
  lintEdgetpuCommand,
  publishCommand,
  deployCommand,
  devicesCommand,
  rolloutsCommand,
  driftCommand,
  flashCommand,
  agentReleaseCommand,
  demoCommand,
  soakCommand,
  benchCommand,
];
