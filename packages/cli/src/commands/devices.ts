import type { ReportedState, TelemetrySample } from '@edgefleet/protocol';
import type { Command } from '../command.ts';
import { hubClient, hubOptions } from '../hub-client.ts';
import { formatAge, formatTable } from '../table.ts';

interface DeviceView {
  id: string;
  name: string;
  status: string;
  profile: string | null;
  tags: string[];
  agentVersion: string | null;
  lastSeenAt: string | null;
  reported: ReportedState | null;
  lastTelemetry: TelemetrySample | null;
}

export const devicesCommand: Command = {
  name: 'devices',
  summary: 'List the fleet: status, profile, models and health',
  usage: 'devices [--revoked]',
  options: { ...hubOptions(), revoked: { type: 'boolean' } },
  async run(ctx) {
    const { devices } = await hubClient(ctx).request<{ devices: DeviceView[] }>(
      'GET',
      `/devices${ctx.values.revoked ? '?revoked=true' : ''}`,
    );
    ctx.printJson(devices);
    if (devices.length === 0) {
      ctx.print(
        'no devices yet: create an enrollment token with `edgefleet token create` and start an agent with it',
      );
      return 0;
    }
    const models = (d: DeviceView) =>
      Object.values(d.reported?.models ?? {})
        .map((s) =>
          s.active
            ? `${s.active.name}@${s.active.version}`
            : s.deployment
              ? `${s.deployment.name}@${s.deployment.version} (${s.deployment.state})`
              : '',
        )
        .filter(Boolean)
        .join(', ');
    const t = (d: DeviceView) => d.lastTelemetry;
    ctx.print(
      formatTable(devices, [
        { header: 'NAME', value: (d) => d.name },
        { header: 'ID', value: (d) => d.id },
        { header: 'STATUS', value: (d) => d.status },
        { header: 'PROFILE', value: (d) => d.profile },
        { header: 'MODELS', value: (d) => models(d) || '-' },
        { header: 'CPU%', value: (d) => t(d)?.cpu_load_pct.toFixed(0), align: 'right' },
        {
          header: 'MEM MB',
          value: (d) =>
            t(d) ? `${t(d)?.mem_used_mb.toFixed(0)}/${t(d)?.mem_total_mb.toFixed(0)}` : undefined,
          align: 'right',
        },
        {
          header: 'TEMP',
          value: (d) => (t(d)?.temp_c != null ? `${t(d)?.temp_c?.toFixed(0)}°C` : undefined),
          align: 'right',
        },
        { header: 'TELEMETRY', value: (d) => formatAge(t(d)?.ts) },
        { header: 'LAST SEEN', value: (d) => formatAge(d.lastSeenAt) },
      ]),
    );
    return 0;
  },
};
