/** Models: versions, artifacts per target with their conversion reports, and drift per variable. */
import { useState } from 'preact/hooks';
import { Badge, Empty, ErrorBox } from '../components/bits.tsx';
import { Bars } from '../components/chart.tsx';
import { useApi } from '../data.ts';
import { age, bytes } from '../format.ts';
import type { ModelSummary, VersionView } from '../types.ts';

export function ModelsPage() {
  const models = useApi<{ models: ModelSummary[] }>('/models', (e) => e.type === 'model');
  if (models.error) return <ErrorBox error={models.error} />;
  const list = models.data?.models ?? [];
  return (
    <div class="page">
      <h2>Models</h2>
      {list.length === 0 ? (
        <Empty>
          No models yet: <code>edgefleet publish model.onnx --model NAME --version 1.0.0</code>
        </Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Model</th>
              <th>Versions</th>
              <th>Latest</th>
            </tr>
          </thead>
          <tbody>
            {list.map((m) => (
              <tr key={m.name}>
                <td>
                  <a href={`#/models/${encodeURIComponent(m.name)}`}>{m.name}</a>
                </td>
                <td>{m.versions.length}</td>
                <td>{m.versions.at(-1)?.version ?? '–'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

interface DriftView {
  status: 'ok' | 'warning' | 'drift';
  variables: {
    name: string;
    status: string;
    psi?: number;
    reference?: { labels: string[]; proportions: number[] };
    current?: { proportions: number[] };
  }[];
}

function Drift(props: { name: string; version: string }) {
  const drift = useApi<DriftView>(
    `/models/${encodeURIComponent(props.name)}/versions/${encodeURIComponent(props.version)}/drift`,
    (e) => e.type === 'drift',
  );
  if (drift.error)
    return (
      <Empty>
        No drift analysis for this version yet (it needs a reference profile in the bundle and statistics from
        devices).
      </Empty>
    );
  if (!drift.data) return <Empty>Loading…</Empty>;
  return (
    <div>
      <p>
        Drift status <Badge value={drift.data.status} />
      </p>
      <div class="charts">
        {drift.data.variables
          .filter((v) => v.reference && v.current)
          .map((v) => (
            <Bars
              key={v.name}
              title={`${v.name} (${v.status}${v.psi !== undefined ? `, PSI ${v.psi.toFixed(3)}` : ''})`}
              labels={v.reference?.labels ?? []}
              series={[
                { label: 'reference', values: v.reference?.proportions ?? [], color: '#95a5a6' },
                { label: 'current', values: v.current?.proportions ?? [], color: '#e67e22' },
              ]}
            />
          ))}
      </div>
    </div>
  );
}

export function ModelPage(props: { name: string }) {
  const model = useApi<ModelSummary>(`/models/${encodeURIComponent(props.name)}`, (e) => e.type === 'model');
  const [selected, setSelected] = useState<string | undefined>(undefined);
  const version = selected ?? model.data?.versions.at(-1)?.version;
  const detail = useApi<VersionView>(
    version ? `/models/${encodeURIComponent(props.name)}/versions/${encodeURIComponent(version)}` : null,
  );
  if (model.error) return <ErrorBox error={model.error} />;
  if (!model.data) return <Empty>Loading…</Empty>;
  const v = detail.data;
  return (
    <div class="page">
      <h2>{props.name}</h2>
      <p class="versions">
        {model.data.versions.map((x) => (
          <button
            type="button"
            key={x.version}
            class={x.version === version ? 'chip on' : 'chip'}
            onClick={() => setSelected(x.version)}
          >
            {x.version}
          </button>
        ))}
      </p>
      {v && (
        <>
          <p class="meta">
            published {age(v.createdAt)} by {v.createdBy ?? '–'} from {v.sourceFormat}, signed by {v.signedBy}
          </p>
          <section class="card">
            <h3>Artifacts</h3>
            <table>
              <thead>
                <tr>
                  <th>File</th>
                  <th>Target</th>
                  <th>Precision</th>
                  <th>Runtime</th>
                  <th class="num">Size</th>
                  <th>Verification</th>
                </tr>
              </thead>
              <tbody>
                {v.manifest.artifacts.map((a) => (
                  <tr key={a.file}>
                    <td>{a.file}</td>
                    <td>{a.target}</td>
                    <td>{a.precision}</td>
                    <td>{a.runtime}</td>
                    <td class="num">{bytes(a.size_bytes)}</td>
                    <td>
                      {a.report ? (
                        <details>
                          <summary>report</summary>
                          <pre>{JSON.stringify(a.report, null, 2)}</pre>
                        </details>
                      ) : (
                        '–'
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p class="meta">
              inputs {v.manifest.inputs.map((i) => `${i.name} [${i.shape.join('×')}] ${i.dtype}`).join(', ')}{' '}
              · outputs{' '}
              {v.manifest.outputs.map((o) => `${o.name} [${o.shape.join('×')}] ${o.dtype}`).join(', ')}
            </p>
          </section>
          <section class="card">
            <h3>Drift</h3>
            <Drift name={props.name} version={v.version} />
          </section>
        </>
      )}
    </div>
  );
}
