/** Rollouts: the list, a form to start one, and a rollout's batches, gates, devices, history and controls. */
import { useState } from 'preact/hooks';
import { api } from '../api.ts';
import { Badge, Empty, ErrorBox } from '../components/bits.tsx';
import { useApi } from '../data.ts';
import { age, num } from '../format.ts';
import type { ModelSummary, Rollout } from '../types.ts';

function NewRollout(props: { onStarted: (id: string) => void }) {
  const models = useApi<{ models: ModelSummary[] }>('/models');
  const [ref, setRef] = useState('');
  const [target, setTarget] = useState('all');
  const [batches, setBatches] = useState('1,50%,100%');
  const [soak, setSoak] = useState('0');
  const [error, setError] = useState('');
  const options = (models.data?.models ?? []).flatMap((m) => m.versions.map((v) => `${m.name}@${v.version}`));
  const start = async (event: Event) => {
    event.preventDefault();
    const [model, version] = (ref || options.at(-1) || '').split('@');
    const selector =
      target === 'all'
        ? { all: true }
        : target.startsWith('tag:')
          ? { tags: [target.slice(4)] }
          : { devices: target.replace(/^device:/, '').split(',') };
    try {
      const r = await api<{ id: string }>('POST', '/rollouts', {
        model,
        version,
        target: selector,
        batches: batches.split(',').map((b) => b.trim()),
        soakSeconds: Number(soak),
      });
      props.onStarted(r.id);
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    }
  };
  return (
    <form class="card form" onSubmit={start} data-testid="new-rollout">
      <h3>Start a rollout</h3>
      <label>
        Model version
        <select name="model" value={ref} onChange={(e) => setRef((e.target as HTMLSelectElement).value)}>
          {options.map((o) => (
            <option key={o} value={o}>
              {o}
            </option>
          ))}
        </select>
      </label>
      <label>
        Target
        <input
          name="target"
          value={target}
          onInput={(e) => setTarget((e.target as HTMLInputElement).value)}
          placeholder="all, tag:NAME or device:ID"
        />
      </label>
      <label>
        Batches
        <input
          name="batches"
          value={batches}
          onInput={(e) => setBatches((e.target as HTMLInputElement).value)}
        />
      </label>
      <label>
        Soak (s)
        <input
          name="soak"
          type="number"
          min="0"
          value={soak}
          onInput={(e) => setSoak((e.target as HTMLInputElement).value)}
        />
      </label>
      <button type="submit" disabled={options.length === 0}>
        Start
      </button>
      {error && <p class="error">{error}</p>}
    </form>
  );
}

export function RolloutsPage(props: { canWrite: boolean }) {
  const rollouts = useApi<{ rollouts: Rollout[] }>('/rollouts', (e) => e.type === 'rollout');
  if (rollouts.error) return <ErrorBox error={rollouts.error} />;
  return (
    <div class="page">
      <h2>Rollouts</h2>
      {props.canWrite && <NewRollout onStarted={(id) => (location.hash = `#/rollouts/${id}`)} />}
      <section class="card">
        {(rollouts.data?.rollouts ?? []).length === 0 ? (
          <Empty>No rollouts yet.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Rollout</th>
                <th>Model</th>
                <th>State</th>
                <th>Devices</th>
                <th>Started</th>
              </tr>
            </thead>
            <tbody>
              {(rollouts.data?.rollouts ?? []).map((r) => (
                <tr key={r.id}>
                  <td>
                    <a href={`#/rollouts/${r.id}`}>{r.id}</a>
                  </td>
                  <td>
                    {r.model}@{r.version}
                  </td>
                  <td>
                    <Badge value={r.state} />
                  </td>
                  <td>
                    {Object.entries(r.counts)
                      .map(([k, v]) => `${k} ${v}`)
                      .join(', ')}
                  </td>
                  <td>
                    {age(r.createdAt)} by {r.createdBy ?? '–'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}

const actionsFor: Record<string, ('pause' | 'resume' | 'approve' | 'cancel' | 'rollback')[]> = {
  running: ['pause', 'cancel', 'rollback'],
  paused: ['resume', 'cancel', 'rollback'],
  'awaiting-approval': ['approve', 'pause', 'cancel', 'rollback'],
  completed: ['rollback'],
  failed: ['rollback'],
};

export function RolloutPage(props: { id: string; canWrite: boolean }) {
  const rollout = useApi<Rollout>(
    `/rollouts/${props.id}`,
    (e) => e.type === 'rollout' && e.rolloutId === props.id,
  );
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  if (rollout.error) return <ErrorBox error={rollout.error} />;
  const r = rollout.data;
  if (!r) return <Empty>Loading…</Empty>;
  const devices = r.devices ?? [];
  const batches = [...new Set(devices.map((d) => d.batch))].sort((a, b) => a - b);
  const act = async (action: string) => {
    setBusy(true);
    setError('');
    try {
      await api('POST', `/rollouts/${r.id}/${action}`, { reason: 'from the dashboard' });
      rollout.reload();
    } catch (e) {
      setError(e instanceof Error ? e.message : String(e));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="page">
      <h2>
        {r.model}@{r.version} <Badge value={r.state} />
      </h2>
      <p class="meta">
        {r.id} · started {age(r.createdAt)} by {r.createdBy ?? '–'} · batch {r.currentBatch + 1} of{' '}
        {batches.length}
        {r.stateReason ? ` · ${r.stateReason}` : ''}
      </p>
      {props.canWrite && (
        <p class="actions" data-testid="rollout-actions">
          {(actionsFor[r.state] ?? []).map((a) => (
            <button
              type="button"
              key={a}
              disabled={busy}
              onClick={() => act(a)}
              class={a === 'rollback' || a === 'cancel' ? 'danger' : ''}
            >
              {a}
            </button>
          ))}
        </p>
      )}
      {error && <p class="error">{error}</p>}
      <section class="card">
        <h3>Batches</h3>
        {batches.map((b) => {
          const members = devices.filter((d) => d.batch === b);
          const active = members.filter((d) => d.state === 'active').length;
          return (
            <div class="batch" key={b}>
              <span>
                Batch {b + 1} ({members.length})
              </span>
              <div class="progress">
                <div style={{ width: `${(100 * active) / Math.max(1, members.length)}%` }} />
              </div>
              <span>
                {active}/{members.length} active
              </span>
            </div>
          );
        })}
      </section>
      <section class="card">
        <h3>Gates</h3>
        {(r.gates?.readings ?? []).length === 0 ? (
          <Empty>No gate readings yet.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Gate</th>
                <th>Status</th>
                <th class="num">Before</th>
                <th class="num">Now</th>
                <th class="num">Limit</th>
                <th>Detail</th>
              </tr>
            </thead>
            <tbody>
              {(r.gates?.readings ?? []).map((g) => (
                <tr key={g.gate}>
                  <td>{g.gate}</td>
                  <td>
                    <Badge value={g.status} />
                  </td>
                  <td class="num">{num(g.baseline, 2)}</td>
                  <td class="num">{num(g.candidate, 2)}</td>
                  <td class="num">{num(g.limit, 2)}</td>
                  <td>{g.detail}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card">
        <h3>Devices</h3>
        <div class="scroll">
          <table data-testid="rollout-devices">
            <thead>
              <tr>
                <th>Device</th>
                <th>Batch</th>
                <th>State</th>
                <th>Updated</th>
                <th>Detail</th>
              </tr>
            </thead>
            <tbody>
              {devices.map((d) => (
                <tr key={d.deviceId}>
                  <td>
                    <a href={`#/devices/${d.deviceId}`}>{d.deviceId}</a>
                  </td>
                  <td>{d.batch + 1}</td>
                  <td>
                    <Badge value={d.state} />
                  </td>
                  <td>{age(d.updatedAt)}</td>
                  <td>{d.reason ?? ''}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section class="card">
        <h3>History</h3>
        <ul class="plain">
          {(r.events ?? []).map((e) => (
            <li key={e.id}>
              <small>{new Date(e.ts).toLocaleTimeString()}</small> <b>{e.kind}</b> {e.message}{' '}
              {e.actor ? <small>({e.actor})</small> : null}
            </li>
          ))}
        </ul>
      </section>
    </div>
  );
}
