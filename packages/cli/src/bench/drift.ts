/**
 * Drift: the hub's cost of merging 10,000 device windows (decoded, and from the wire JSON it
 * stores) and testing the merged window, plus the device's cost per prediction. The baseline of
 * the merge is a plain loop summing the same windows' bin counts: the floor any merge pays.
 */
import {
  buildReferenceProfile,
  createWindowAccumulator,
  decodeWindow,
  emptyWindow,
  evaluateFleet,
  evaluateScope,
  mergeInto,
  normalSource,
  type ReferenceRow,
  seededRandom,
  type WindowPayload,
  type WindowStats,
} from '@edgefleet/drift';
import { type BenchModule, row, timeMedian } from './types.ts';

const WINDOWS = 10_000;
const PER_WINDOW = 200;

/** 19 input features and one output: 20 numeric variables. */
function rows(count: number, seed: number): ReferenceRow[] {
  const z = normalSource(seededRandom(seed));
  return Array.from({ length: count }, () => {
    const x = Float32Array.from({ length: 19 }, (_, i) => z() * (1 + i) + i);
    return {
      inputs: { x: { dtype: 'float32', shape: [1, 19], data: x } },
      outputs: { y: { dtype: 'float32', shape: [1, 1], data: new Float32Array([x[0]! + x[1]!]) } },
    };
  });
}

/** The floor any merge pays: add every variable's bin counts of `w` into `sums`, nothing else. */
function addCounts(sums: Float64Array[], w: WindowStats): void {
  w.vars.forEach((v, i) => {
    const acc = sums[i] as Float64Array;
    for (let k = 0; k < v.counts.length; k++) acc[k] = (acc[k] as number) + (v.counts[k] as number);
  });
}

export const driftBench: BenchModule = {
  name: 'drift',
  title: 'Drift: merge and test 10,000 device windows',
  async run(ctx) {
    const runs = ctx.quick ? 2 : 5;
    const io = {
      inputs: [{ name: 'x', shape: ['batch', 19], dtype: 'float32' }],
      outputs: [{ name: 'y', shape: ['batch', 1], dtype: 'float32' }],
    };
    ctx.progress('drift: building the reference profile and 10,000 windows…');
    const profile = buildReferenceProfile({ ...io, rows: rows(ctx.quick ? 2000 : 10_000, 1) });
    const traffic = rows(ctx.quick ? 2000 : 20_000, 2);

    const acc = createWindowAccumulator(profile);
    const addMs = await timeMedian(runs, () => {
      for (const r of traffic) acc.add({ ...r, latencyMs: 1.5 });
    });
    acc.take();

    // 10,000 windows of 200 predictions, built from 50 distinct ones to keep setup short.
    const distinct: WindowPayload[] = [];
    for (let w = 0; w < 50; w++) {
      const a = createWindowAccumulator(profile);
      for (let i = 0; i < PER_WINDOW; i++)
        a.add({ ...traffic[(w * PER_WINDOW + i) % traffic.length]!, latencyMs: 2 });
      distinct.push(a.take());
    }
    const wire = Array.from({ length: WINDOWS }, (_, i) => JSON.stringify(distinct[i % distinct.length]));
    const decoded: WindowStats[] = wire.map((text) => decodeWindow(JSON.parse(text)));

    ctx.progress('drift: merging…');
    let merged = emptyWindow(profile);
    const mergeMs = await timeMedian(runs, () => {
      merged = emptyWindow(profile);
      for (const w of decoded) mergeInto(merged, w);
    });
    const floorMs = await timeMedian(runs, () => {
      const sums = decoded[0]!.vars.map((v) => new Float64Array(v.counts.length));
      for (const w of decoded) addCounts(sums, w);
    });
    const decodeMergeMs = await timeMedian(Math.min(runs, 3), () => {
      const m = emptyWindow(profile);
      for (const text of wire) mergeInto(m, decodeWindow(JSON.parse(text)));
    });
    const evaluateMs = await timeMedian(runs, () => evaluateScope(profile, merged));
    const byDevice = new Map<string, WindowStats[]>();
    decoded.forEach((w, i) => {
      const id = `dev-${i % 1000}`;
      byDevice.set(id, [...(byDevice.get(id) ?? []), w]);
    });
    const fleetMs = await timeMedian(Math.min(runs, 3), () => evaluateFleet(profile, byDevice));
    if (merged.n !== WINDOWS * PER_WINDOW)
      throw new Error(`merged window counts ${merged.n} predictions, expected ${WINDOWS * PER_WINDOW}`);

    return {
      name: 'drift',
      title: this.title,
      rows: [
        row('merge 10,000 decoded windows', mergeMs, 'ms', {
          baseline: floorMs,
          target: '< 200 ms',
          met: mergeMs < 200,
        }),
        row('decode (JSON + base64) and merge 10,000 windows', decodeMergeMs, 'ms'),
        row('evaluate the merged window (all tests)', evaluateMs, 'ms'),
        row('evaluate 1,000 devices (10 windows each)', fleetMs, 'ms'),
        row('device: count one prediction', (addMs * 1000) / traffic.length, 'µs'),
      ],
      skipped: [],
      notes: [
        `${profile.variables.length} numeric variables, windows of ${PER_WINDOW} predictions; medians of ${runs} runs.`,
        'Merge baseline: a plain loop adding the same windows’ bin counts (no moments, no checks).',
      ],
    };
  },
};
