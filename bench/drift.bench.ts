/**
 * Drift benchmark: merging 10,000 device windows (decoded, and from their wire JSON as the hub
 * stores them), evaluating the merged window, the device's per-prediction cost, and the window
 * message size for 20 variables. Writes bench/results/drift.json and drift.md.
 * Run: npx vite-node bench/drift.bench.ts
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

const WINDOWS = 10_000;
const PER_WINDOW = 200;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(runs: number, fn: () => void): number {
  const out: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return median(out);
}

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

function runDriftBench() {
  const io = {
    inputs: [{ name: 'x', shape: ['batch', 19], dtype: 'float32' }],
    outputs: [{ name: 'y', shape: ['batch', 1], dtype: 'float32' }],
  };
  const profile = buildReferenceProfile({ ...io, rows: rows(10_000, 1) });
  const traffic = rows(20_000, 2);

  // Device cost: predictions counted per second.
  const acc = createWindowAccumulator(profile);
  const addMs = time(3, () => {
    for (const row of traffic) acc.add({ ...row, latencyMs: 1.5 });
  });
  acc.take();

  // 10,000 device windows of 200 predictions (built from 50 distinct windows to keep setup short).
  const distinct: WindowPayload[] = [];
  for (let w = 0; w < 50; w++) {
    const a = createWindowAccumulator(profile);
    for (let i = 0; i < PER_WINDOW; i++)
      a.add({ ...traffic[(w * PER_WINDOW + i) % traffic.length]!, latencyMs: 2 });
    distinct.push(a.take());
  }
  const wire = Array.from({ length: WINDOWS }, (_, i) => JSON.stringify(distinct[i % distinct.length]));
  const decoded: WindowStats[] = wire.map((text) => decodeWindow(JSON.parse(text)));
  const messageBytes = new TextEncoder().encode(
    JSON.stringify({
      windows: [
        {
          seq: 1,
          model: 'bench',
          version: '1.0.0',
          start: new Date(0).toISOString(),
          end: new Date(60_000).toISOString(),
          window: distinct[0],
        },
      ],
    }),
  ).length;

  let merged = emptyWindow(profile);
  const mergeMs = time(5, () => {
    merged = emptyWindow(profile);
    for (const w of decoded) mergeInto(merged, w);
  });
  const decodeMergeMs = time(3, () => {
    const m = emptyWindow(profile);
    for (const text of wire) mergeInto(m, decodeWindow(JSON.parse(text)));
  });
  const evaluateMs = time(5, () => evaluateScope(profile, merged));
  const byDevice = new Map<string, WindowStats[]>();
  decoded.forEach((w, i) => {
    const id = `dev-${i % 1000}`;
    byDevice.set(id, [...(byDevice.get(id) ?? []), w]);
  });
  const fleetMs = time(3, () => evaluateFleet(profile, byDevice));

  return {
    variables: profile.variables.length,
    windowMessageBytes: messageBytes,
    deviceAddMicrosecondsPerPrediction: (addMs * 1000) / traffic.length,
    merge10kWindowsMs: mergeMs,
    decodeAndMerge10kWindowsMs: decodeMergeMs,
    evaluateMergedWindowMs: evaluateMs,
    evaluateFleet1000DevicesMs: fleetMs,
    mergedPredictions: merged.n,
    node: process.version,
  };
}

{
  const r = runDriftBench();
  const dir = join(dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'drift.json'),
    `${JSON.stringify({ ...r, at: new Date().toISOString() }, null, 2)}\n`,
  );
  const md = [
    '# Drift benchmark',
    '',
    `${r.variables} numeric variables, windows of ${PER_WINDOW} predictions, ${r.node}.`,
    '',
    '| measure | value |',
    '|---|---|',
    `| window message (MQTT payload, 20 variables) | ${r.windowMessageBytes} B |`,
    `| device: count one prediction | ${r.deviceAddMicrosecondsPerPrediction.toFixed(2)} µs |`,
    `| merge 10,000 decoded windows | ${r.merge10kWindowsMs.toFixed(1)} ms |`,
    `| decode (JSON + base64) and merge 10,000 windows | ${r.decodeAndMerge10kWindowsMs.toFixed(1)} ms |`,
    `| evaluate the merged window (all tests) | ${r.evaluateMergedWindowMs.toFixed(2)} ms |`,
    `| evaluate a fleet of 1,000 devices (10 windows each) | ${r.evaluateFleet1000DevicesMs.toFixed(0)} ms |`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'drift.md'), md);
  process.stdout.write(md);
}
