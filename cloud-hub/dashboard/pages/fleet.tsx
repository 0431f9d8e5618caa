/** Fleet overview: health at a glance, model versions in the field, active rollouts, recent alerts. */
import { Badge, Empty, ErrorBox } from '../components/bits.tsx';
import { useApi } from '../data.ts';
import { age, num } from '../format.ts';
import type { Device, EventRecord, Rollout } from '../types.ts';

const alertKinds =
  /^(rollout\.(failed|paused|rolled-back|device-failed|device-rolled-back|device-timed-out)|drift\.|device\.revoked)/;

export function FleetPage() {
  const devices = useApi<{ devices: Device[] }>(
    '/devices',
    (e) => e.type === 'device' || e.type === 'telemetry',
  );
  const rollouts = useApi<{ rollouts: Rollout[] }>('/rollouts', (e) => e.type === 'rollout');
  const events = useApi<{ events: EventRecord[] }>('/events?limit=200', (e) => e.type !== 'telemetry');
  if (devices.error) return <ErrorBox error={devices.error} />;
  const list = devices.data?.devices ?? [];
  const online = list.filter((d) => d.status === 'online').length;
  const versions = new Map<string, number>();
  for (const d of list) {
    for (const slot of Object.values(d.reported?.models ?? {})) {
      if (slot.active)
        versions.set(
          `${slot.active.name}@${slot.active.version}`,
          (versions.get(`${slot.active.name}@${slot.active.version}`) ?? 0) + 1,
        );
    }
  }
  const active = (rollouts.data?.rollouts ?? []).filter((r) =>
    ['running', 'paused', 'awaiting-approval'].includes(r.state),
  );
  const alerts = (events.data?.events ?? [])
    .filter((e) => alertKinds.test(e.kind))
    .slice(-8)
    .reverse();
  return (
    <div class="page">
      <section class="stats">
        <div class="card stat" data-testid="online-count">
          <b>{online}</b> online
        </div>
        <div class="card stat">
          <b>{list.length - online}</b> offline
        </div>
        <div class="card stat">
          <b>{versions.size}</b> model versions in the field
        </div>
        <div class="card stat">
          <b>{active.length}</b> active rollouts
        </div>
      </section>
      <div class="grid">
        <section class="card">
          <h3>Model versions in the field</h3>
          {versions.size === 0 ? (
            <Empty>No device runs a model yet.</Empty>
          ) : (
            <ul class="plain">
              {[...versions].map(([v, n]) => (
                <li key={v}>
                  <a href={`#/models/${encodeURIComponent(v.split('@')[0] as string)}`}>{v}</a> on {n}{' '}
                  device(s)
                </li>
              ))}
            </ul>
          )}
        </section>
        <section class="card">
          <h3>Active rollouts</h3>
          {active.length === 0 ? (
            <Empty>None.</Empty>
          ) : (
            <ul class="plain">
              {active.map((r) => (
                <li key={r.id}>
                  <a href={`#/rollouts/${r.id}`}>
                    {r.model}@{r.version}
                  </a>{' '}
                  <Badge value={r.state} />{' '}
                  {Object.entries(r.counts)
                    .map(([k, v]) => `${k} ${v}`)
                    .join(', ')}
                </li>
              ))}
            </ul>
          )}
        </section>
        <section class="card">
          <h3>Alerts</h3>
          {alerts.length === 0 ? (
            <Empty>Nothing needs attention.</Empty>
          ) : (
            <ul class="plain alerts">
              {alerts.map((e) => (
                <li key={e.id}>
                  <small>{age(e.ts)}</small> <b>{e.kind}</b> {e.message}
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
      <section class="card">
        <h3>Devices</h3>
        {list.length === 0 ? (
          <Empty>
            No devices yet: create an enrollment token (<code>edgefleet token create</code>) and start an
            agent with it.
          </Empty>
        ) : (
          <div class="scroll">
            <table data-testid="devices">
              <thead>
                <tr>
                  <th>Name</th>
                  <th>Status</th>
                  <th>Profile</th>
                  <th>Models</th>
                  <th class="num">CPU %</th>
                  <th class="num">Memory</th>
                  <th class="num">Temp</th>
                  <th>Telemetry</th>
                </tr>
              </thead>
              <tbody>
                {list.map((d) => {
                  const t = d.lastTelemetry;
                  return (
                    <tr key={d.id}>
                      <td>
                        <a href={`#/devices/${d.id}`}>{d.name}</a>
                      </td>
                      <td>
                        <Badge value={d.status} />
                      </td>
                      <td>{d.profile ?? '–'}</td>
                      <td>
                        {Object.values(d.reported?.models ?? {})
                          .map((s) => (s.active ? `${s.active.name}@${s.active.version}` : ''))
                          .filter(Boolean)
                          .join(', ') || '–'}
                      </td>
                      <td class="num">{num(t?.cpu_load_pct)}</td>
                      <td class="num">{t ? `${num(t.mem_used_mb)} / ${num(t.mem_total_mb)} MB` : '–'}</td>
                      <td class="num">{t?.temp_c != null ? `${num(t.temp_c)} °C` : '–'}</td>
                      <td>{age(t?.ts)}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </div>
  );
}
