/** One device: health and inference charts over time, installed models, recent events. */
import { Badge, Empty, ErrorBox } from '../components/bits.tsx';
import { TimeChart } from '../components/chart.tsx';
import { useApi } from '../data.ts';
import { age } from '../format.ts';
import type { Device, EventRecord, ReportedState, TelemetrySample } from '../types.ts';

export function DevicePage(props: { id: string }) {
  const refresh = (e: { type: string; deviceId?: string }) => e.deviceId === props.id;
  const device = useApi<Device>(`/devices/${props.id}`, refresh);
  const telemetry = useApi<{ samples: TelemetrySample[] }>(
    `/devices/${props.id}/telemetry?limit=360`,
    refresh,
  );
  const events = useApi<{ events: EventRecord[] }>(`/devices/${props.id}/events?limit=50`, refresh);
  if (device.error) return <ErrorBox error={device.error} />;
  const d = device.data;
  if (!d) return <Empty>Loading…</Empty>;
  const samples = telemetry.data?.samples ?? [];
  const times = samples.map((s) => Date.parse(s.ts) / 1000);
  const pick = (f: (s: TelemetrySample) => number | null | undefined) => samples.map((s) => f(s) ?? null);
  return (
    <div class="page">
      <h2>
        {d.name} <Badge value={d.status} />
      </h2>
      <p class="meta">
        {d.id} · {d.facts.arch} · profile {d.profile ?? '–'} · agent {d.agentVersion ?? '–'} · tags{' '}
        {d.tags.join(', ') || '–'} · last seen {age(d.lastSeenAt)}
      </p>
      <AgentUpdateLine update={d.reported?.agentUpdate} />
      <div class="charts">
        <TimeChart
          testId="chart-cpu"
          title="CPU load"
          unit="%"
          times={times}
          series={[{ label: 'CPU %', values: pick((s) => s.cpu_load_pct), color: '#4c8bf5' }]}
        />
        <TimeChart
          title="Memory"
          unit="MB"
          times={times}
          series={[
            { label: 'used', values: pick((s) => s.mem_used_mb), color: '#9b59b6' },
            { label: 'agent RSS', values: pick((s) => s.rss_mb), color: '#e67e22' },
          ]}
        />
        <TimeChart
          title="Temperature"
          unit="°C"
          times={times}
          series={[{ label: '°C', values: pick((s) => s.temp_c), color: '#e74c3c' }]}
        />
        <TimeChart
          title="Disk free"
          unit="MB"
          times={times}
          series={[{ label: 'free', values: pick((s) => s.disk_free_mb), color: '#16a085' }]}
        />
        <TimeChart
          testId="chart-latency"
          title="Inference latency"
          unit="ms"
          times={times}
          series={[
            { label: 'p50', values: pick((s) => s.inference?.latency_p50_ms), color: '#2ecc71' },
            { label: 'p95', values: pick((s) => s.inference?.latency_p95_ms), color: '#f39c12' },
          ]}
        />
        <TimeChart
          title="Requests and errors per sample"
          unit="count"
          times={times}
          series={[
            { label: 'requests', values: pick((s) => s.inference?.requests), color: '#34495e' },
            { label: 'errors', values: pick((s) => s.inference?.errors), color: '#c0392b' },
          ]}
        />
      </div>
      <section class="card">
        <h3>Models</h3>
        {Object.keys(d.reported?.models ?? {}).length === 0 ? (
          <Empty>No model installed.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Slot</th>
                <th>Active</th>
                <th>Artifact</th>
                <th>Previous</th>
                <th>Deployment</th>
                <th>Shadow</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(d.reported?.models ?? {}).map(([slot, s]) => (
                <tr key={slot}>
                  <td>{slot}</td>
                  <td>{s.active ? `${s.active.version} (since ${age(s.active.since)})` : '–'}</td>
                  <td>
                    {s.active
                      ? `${s.active.target} · ${s.active.runtime} · ${s.active.sha256.slice(0, 12)}`
                      : '–'}
                  </td>
                  <td>{s.previous?.version ?? '–'}</td>
                  <td>
                    {s.deployment ? (
                      <>
                        {s.deployment.version} <Badge value={s.deployment.state} />{' '}
                        {s.deployment.error
                          ? `${s.deployment.error.code}: ${s.deployment.error.message}`
                          : ''}
                      </>
                    ) : (
                      '–'
                    )}
                  </td>
                  <td>{s.shadow ? `${s.shadow.version} (${s.shadow.state})` : '–'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card">
        <h3>Recent events</h3>
        <ul class="plain">
          {(events.data?.events ?? [])
            .slice()
            .reverse()
            .map((e) => (
              <li key={e.id}>
                <small>{age(e.ts)}</small> <b>{e.kind}</b> {e.message}{' '}
                {e.actor ? <small>({e.actor})</small> : null}
              </li>
            ))}
        </ul>
      </section>
    </div>
  );
}

/** Self-update progress (docs/self-update.md): which release, how far, and why it failed. */
function AgentUpdateLine(props: { update: ReportedState['agentUpdate'] }) {
  const u = props.update;
  if (!u) return null;
  const progress =
    u.state === 'downloading' && u.progress && u.progress.total > 0
      ? ` ${Math.round((100 * u.progress.bytes) / u.progress.total)} %`
      : '';
  return (
    <p class="meta" data-testid="agent-update">
      agent update to {u.version}: <Badge value={u.state} />
      {progress} {u.error ? `${u.error.code}: ${u.error.message}` : ''} · {age(u.updatedAt)}
    </p>
  );
}
