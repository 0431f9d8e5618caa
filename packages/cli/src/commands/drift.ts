import type { Command } from '../command.ts';
import { UsageError } from '../command.ts';
import { hubClient, hubOptions } from '../hub-client.ts';
import { formatTable } from '../table.ts';

interface VariableView {
  name: string;
  kind: string;
  status: string;
  n: number;
  psi: number;
  psiFloor: number;
  pAdjusted: number;
  js: number;
  ks?: { d: number; pValue: number };
  wasserstein?: number;
  meanShift?: number;
  invalidRate: number;
}

interface DriftView {
  model: string;
  version: string;
  status: string;
  drifted: string[];
  n: number;
  minWindow: number;
  errorRate: number;
  performance: { estimatedAccuracy: number; referenceAccuracy: number; status: string } | null;
  variables: VariableView[];
  devices: { deviceId: string; status: string; n: number; drifted: string[]; qValue: number }[];
  windows: { used: number; skipped: number; devices: number };
}

const fixed = (x: number | undefined, digits = 3) => (x === undefined ? undefined : x.toFixed(digits));
const pValue = (p: number) => (p < 1e-4 ? p.toExponential(1) : p.toFixed(4));

export const driftCommand: Command = {
  name: 'drift',
  summary: 'Drift of a model version against its reference profile: status and the variables behind it',
  usage: 'drift NAME@VERSION [--device ID] [--lookback SECONDS] [--all]   (--all lists every variable)',
  options: {
    ...hubOptions(),
    device: { type: 'string' },
    lookback: { type: 'string' },
    all: { type: 'boolean' },
  },
  async run(ctx) {
    const [ref] = ctx.positionals;
    const match = ref?.match(/^([^@]+)@(.+)$/);
    if (!match)
      throw new UsageError('give the model version as NAME@VERSION, e.g. `edgefleet drift mnist@1.2.0`');
    const query = new URLSearchParams();
    if (typeof ctx.values.device === 'string') query.set('device', ctx.values.device);
    if (typeof ctx.values.lookback === 'string') query.set('lookback', ctx.values.lookback);
    const path = `/models/${encodeURIComponent(match[1]!)}/versions/${encodeURIComponent(match[2]!)}/drift`;
    const view = await hubClient(ctx).request<DriftView>('GET', `${path}${query.size ? `?${query}` : ''}`);
    ctx.printJson(view);
    const headline = `${view.model}@${view.version}: ${view.status.toUpperCase()}`;
    ctx.print(view.drifted.length ? `${headline} (${view.drifted.join(', ')})` : headline);
    ctx.print(
      `  ${view.n} predictions from ${view.windows.devices} devices (${view.windows.used} windows` +
        `${view.windows.skipped ? `, ${view.windows.skipped} skipped: not of this profile` : ''}); ` +
        `minimum window ${view.minWindow}; error rate ${(100 * view.errorRate).toFixed(2)}%`,
    );
    if (view.performance)
      ctx.print(
        `  estimated accuracy ${(100 * view.performance.estimatedAccuracy).toFixed(1)}% ` +
          `(reference ${(100 * view.performance.referenceAccuracy).toFixed(1)}%): ${view.performance.status}`,
      );
    if (view.status === 'insufficient-data') {
      ctx.print(`  not enough predictions yet: each scope needs at least ${view.minWindow}`);
      return 0;
    }
    const shown = ctx.values.all ? view.variables : view.variables.filter((v) => v.status !== 'ok');
    ctx.print('');
    if (shown.length === 0) ctx.print('  every variable within its reference (use --all to list them)');
    else
      ctx.print(
        formatTable(shown, [
          { header: 'VARIABLE', value: (v) => v.name },
          { header: 'STATUS', value: (v) => v.status },
          { header: 'PSI', value: (v) => fixed(v.psi), align: 'right' },
          { header: 'FLOOR', value: (v) => fixed(v.psiFloor), align: 'right' },
          { header: 'P (HOLM)', value: (v) => pValue(v.pAdjusted), align: 'right' },
          { header: 'KS D', value: (v) => fixed(v.ks?.d), align: 'right' },
          { header: 'JS', value: (v) => fixed(v.js), align: 'right' },
          { header: 'W1/σ', value: (v) => fixed(v.wasserstein), align: 'right' },
          { header: 'MEAN SHIFT', value: (v) => fixed(v.meanShift, 2), align: 'right' },
          { header: 'INVALID', value: (v) => `${(100 * v.invalidRate).toFixed(1)}%`, align: 'right' },
        ]),
      );
    const drifting = view.devices.filter((d) => d.status === 'warning' || d.status === 'drift');
    if (drifting.length) {
      ctx.print('');
      ctx.print(
        formatTable(drifting, [
          { header: 'DEVICE', value: (d) => d.deviceId },
          { header: 'STATUS', value: (d) => d.status },
          { header: 'PREDICTIONS', value: (d) => String(d.n), align: 'right' },
          { header: 'Q (BH)', value: (d) => pValue(d.qValue), align: 'right' },
          { header: 'VARIABLES', value: (d) => d.drifted.join(', ') },
        ]),
      );
    }
    return view.status === 'drift' ? 3 : 0;
  },
};
