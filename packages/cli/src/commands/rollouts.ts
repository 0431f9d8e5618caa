import type { Command } from '../command.ts';
import { hubClient, hubOptions } from '../hub-client.ts';
import { formatAge, formatTable } from '../table.ts';

interface RolloutView {
  id: string;
  model: string;
  version: string;
  state: string;
  stateReason: string | null;
  currentBatch: number;
  createdAt: string;
  createdBy: string | null;
  counts: Record<string, number>;
  devices?: { deviceId: string; batch: number; state: string; reason: string | null; updatedAt: string }[];
  events?: { ts: string; kind: string; actor: string | null; message: string }[];
}

const countsText = (c: Record<string, number>) =>
  Object.entries(c)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');

export const rolloutsCommand: Command = {
  name: 'rollouts',
  summary: 'Rollout status: all rollouts, or one with its devices and history; `rollouts cancel ID`',
  usage: 'rollouts [ID] | rollouts cancel ID',
  options: { ...hubOptions() },
  async run(ctx) {
    const client = hubClient(ctx);
    const [first, second] = ctx.positionals;
    if (first === 'cancel' && second) {
      const r = await client.request<RolloutView>('POST', `/rollouts/${encodeURIComponent(second)}/cancel`);
      ctx.printJson(r);
      ctx.print(`${r.id} ${r.state}`);
      return 0;
    }
    if (first) {
      const r = await client.request<RolloutView>('GET', `/rollouts/${encodeURIComponent(first)}`);
      ctx.printJson(r);
      ctx.print(
        `${r.id}  ${r.model}@${r.version}  ${r.state}${r.stateReason ? ` (${r.stateReason})` : ''}  batch ${r.currentBatch + 1}`,
      );
      ctx.print(`devices: ${countsText(r.counts)}`);
      ctx.print();
      ctx.print(
        formatTable(r.devices ?? [], [
          { header: 'DEVICE', value: (d) => d.deviceId },
          { header: 'BATCH', value: (d) => d.batch + 1, align: 'right' },
          { header: 'STATE', value: (d) => d.state },
          { header: 'UPDATED', value: (d) => formatAge(d.updatedAt) },
          { header: 'DETAIL', value: (d) => d.reason },
        ]),
      );
      ctx.print();
      for (const e of r.events ?? [])
        ctx.print(`${e.ts}  ${e.kind.padEnd(24)} ${e.actor ?? ''}  ${e.message}`);
      return 0;
    }
    const { rollouts } = await client.request<{ rollouts: RolloutView[] }>('GET', '/rollouts');
    ctx.printJson(rollouts);
    ctx.print(
      formatTable(rollouts, [
        { header: 'ID', value: (r) => r.id },
        { header: 'MODEL', value: (r) => `${r.model}@${r.version}` },
        { header: 'STATE', value: (r) => r.state },
        { header: 'DEVICES', value: (r) => countsText(r.counts) },
        { header: 'STARTED', value: (r) => formatAge(r.createdAt) },
        { header: 'BY', value: (r) => r.createdBy },
      ]),
    );
    return 0;
  },
};
