/** A time-series chart (uPlot): fast on phones, redrawn in place when data changes, sized to its box. */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface Series {
  label: string;
  values: (number | null)[];
  color: string;
}

export function TimeChart(props: {
  title: string;
  unit: string;
  times: number[];
  series: Series[];
  testId?: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = [props.times, ...props.series.map((s) => s.values)] as uPlot.AlignedData;

  useEffect(() => {
    const element = box.current;
    if (!element) return;
    const options: uPlot.Options = {
      width: element.clientWidth || 300,
      height: 160,
      series: [
        {},
        ...props.series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: true })),
      ],
      axes: [{ stroke: '#8a94a6' }, { stroke: '#8a94a6', label: props.unit, size: 50 }],
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
    };
    plot.current = new uPlot(options, data, element);
    const resize = new ResizeObserver(() =>
      plot.current?.setSize({ width: element.clientWidth, height: 160 }),
    );
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.current?.destroy();
      plot.current = null;
    };
    // Series layout is fixed per chart; data updates go through setData below.
  }, [props.series.length]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return (
    <section class="card chart" data-testid={props.testId}>
      <h3>{props.title}</h3>
      {props.series.every((s) => s.values.every((v) => v === null)) && (
        <p class="empty chart-empty">no data yet</p>
      )}
      <div ref={box} class="chart-box" data-points={props.times.length} />
    </section>
  );
}

/** Side-by-side bars, e.g. a reference histogram against the current one. */
export function Bars(props: {
  title: string;
  labels: string[];
  series: { label: string; values: number[]; color: string }[];
}) {
  const max = Math.max(1e-9, ...props.series.flatMap((s) => s.values));
  return (
    <section class="card">
      <h3>{props.title}</h3>
      <div class="bars">
        {props.labels.map((label, i) => (
          <div class="bar-group" key={label} title={label}>
            {props.series.map((s) => (
              <div
                class="bar"
                style={{ height: `${(100 * (s.values[i] ?? 0)) / max}%`, background: s.color }}
                title={`${s.label}: ${(s.values[i] ?? 0).toFixed(3)}`}
              />
            ))}
            <span class="bar-label">{label}</span>
          </div>
        ))}
      </div>
      <p class="legend">
        {props.series.map((s) => (
          <span key={s.label}>
            <i style={{ background: s.color }} /> {s.label}
          </span>
        ))}
      </p>
    </section>
  );
}
