/**
 * `buildReferenceProfile`: the converters call it at convert time (`--reference`) and the hub at
 * publish. It reads every variable from the reference rows with the device's own reader, fixes
 * equal-mass bins, and counts the reference into them with the device's own bin function.
 */
import { binIndex, equalMassEdges, quantileSorted } from '../binning.ts';
import { DriftError } from '../errors.ts';
import { calibrate, fitIsotonic } from '../performance.ts';
import { profileHash } from '../profile.ts';
import {
  type CategoricalVariable,
  type NumericVariable,
  PROFILE_FORMAT,
  type ProfileVariable,
  type ReferenceProfile,
} from '../profile-schema.ts';
import { readNumber, type TensorLike, type TensorSpecLike } from '../tensors.ts';
import { sampleReader } from '../variables.ts';
import { type BuildOptions, type Plan, type PlannedVariable, planVariables } from './plan.ts';

export type { BuildOptions } from './plan.ts';

/** One reference sample (or batch): model inputs, the fp32 model's outputs, optionally the true class. */
export interface ReferenceRow {
  inputs: Record<string, TensorLike>;
  outputs: Record<string, TensorLike>;
  /** Ground truth: a class index or label (one per sample when the row is a batch). */
  target?: number | string | readonly (number | string)[];
}

export interface ReferenceInput {
  inputs: readonly TensorSpecLike[];
  outputs: readonly TensorSpecLike[];
  rows: readonly ReferenceRow[];
  /** Class names of a classifier output, in output order. */
  labels?: readonly string[];
}

const QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95] as const;
const MAX_CALIBRATOR_STEPS = 64;

/** Build a reference profile from reference rows; throws DriftError DRIFT_REFERENCE_INVALID. */
export function buildReferenceProfile(input: ReferenceInput, options: BuildOptions = {}): ReferenceProfile {
  if (!input || !Array.isArray(input.rows) || input.rows.length === 0)
    throw new DriftError('DRIFT_REFERENCE_INVALID', 'a reference profile needs at least one reference row');
  const bins = options.bins ?? 10;
  if (!Number.isInteger(bins) || bins < 2 || bins > 100)
    throw new DriftError('DRIFT_REFERENCE_INVALID', `bins must be an integer in 2…100, got ${bins}`);
  const plan = planVariables(input, input.rows, options);
  const read = sampleReader({ tensors: plan.tensors, variables: plan.variables });
  const columns = plan.variables.map(() => [] as number[]);
  const targets: (number | string | undefined)[] = [];
  let rows = 0;
  for (const row of input.rows) {
    const r = read(row);
    const n = r.samples();
    if (n === 0)
      throw new DriftError('DRIFT_REFERENCE_INVALID', `reference row ${rows} has tensors of the wrong size`);
    for (let s = 0; s < n; s++) {
      for (let i = 0; i < columns.length; i++) columns[i]!.push(r.value(i, s));
      targets.push(Array.isArray(row.target) ? row.target[s] : (row.target as number | string | undefined));
    }
    rows += n;
  }

  const notes = [...plan.notes];
  const variables: ProfileVariable[] = [];
  plan.variables.forEach((v, i) => {
    const built =
      v.kind === 'numeric' ? numeric(v, columns[i]!, bins) : categorical(v, columns[i]!, plan, options);
    if (built) variables.push(built);
    else notes.push(`variable "${v.name}" left out: no finite reference value`);
  });
  if (variables.length === 0)
    throw new DriftError('DRIFT_REFERENCE_INVALID', 'no variable has a finite value in the reference rows');

  const draft: Omit<ReferenceProfile, 'hash'> = {
    format: PROFILE_FORMAT,
    formatVersion: 1,
    rows,
    task: plan.classifier ? 'classification' : input.outputs.length > 0 ? 'regression' : 'other',
    tensors: plan.tensors,
    minWindow: options.minWindow ?? 200,
    variables,
    ...(plan.classifier ? { classifier: classifierSummary(plan, plan.variables, columns, targets) } : {}),
    ...(plan.image ? { image: imageSummary(plan.image, input.rows) } : {}),
    ...(notes.length ? { notes } : {}),
  };
  return { ...draft, hash: profileHash(draft) };
}

function numeric(v: PlannedVariable, values: number[], bins: number): NumericVariable | undefined {
  const finite = Float64Array.from(values.filter((x) => Number.isFinite(x))).sort();
  if (finite.length === 0) return undefined;
  const min = finite[0]!;
  const max = finite[finite.length - 1]!;
  const edges = equalMassEdges(finite, bins);
  const counts = new Array<number>(edges.length + 4).fill(0);
  for (const x of values) counts[binIndex(edges, min, max, x)]!++;
  let sum = 0;
  for (const x of finite) sum += x;
  const mean = sum / finite.length;
  let ss = 0;
  for (const x of finite) ss += (x - mean) ** 2;
  const q = QUANTILES.map((p) => quantileSorted(finite, p)) as [number, number, number, number, number];
  return {
    name: v.name,
    kind: 'numeric',
    source: v.source,
    edges,
    counts,
    n: finite.length,
    mean,
    std: Math.sqrt(ss / finite.length),
    min,
    max,
    quantiles: q,
  };
}

function categorical(
  v: PlannedVariable,
  values: number[],
  plan: Plan,
  o: BuildOptions,
): CategoricalVariable | undefined {
  const classes = plan.classifier?.classes ?? 0;
  const byClass = new Array<number>(classes).fill(0);
  let invalid = 0;
  for (const x of values) {
    if (Number.isInteger(x) && x >= 0 && x < classes) byClass[x]!++;
    else invalid++;
  }
  const label = (k: number) => plan.classifier?.labels?.[k] ?? String(k);
  const limit = o.maxCategories ?? 50;
  let kept = byClass.map((_, k) => k);
  if (classes > limit)
    kept = kept
      .sort((a, b) => byClass[b]! - byClass[a]! || a - b)
      .slice(0, limit)
      .sort((a, b) => a - b);
  const keptSet = new Set(kept);
  const other = byClass.reduce((s, c, k) => (keptSet.has(k) ? s : s + c), 0);
  return {
    name: v.name,
    kind: 'categorical',
    source: v.source,
    categories: kept.map(label),
    ...(classes > limit ? { classIndex: kept } : {}),
    counts: [invalid, ...kept.map((k) => byClass[k]!), other],
  };
}

function classifierSummary(
  plan: Plan,
  planned: PlannedVariable[],
  columns: number[][],
  targets: (number | string | undefined)[],
): NonNullable<ReferenceProfile['classifier']> {
  const c = plan.classifier!;
  const predicted = columns[planned.findIndex((v) => v.source.op === 'argmax')] ?? [];
  const confidence = columns[planned.findIndex((v) => v.source.op === 'max-prob')] ?? [];
  const finiteConf = Float64Array.from(confidence.filter((x) => Number.isFinite(x))).sort();
  const mean = finiteConf.reduce((s, x) => s + x, 0) / Math.max(1, finiteConf.length);
  const summary: NonNullable<ReferenceProfile['classifier']> = {
    output: c.output,
    classes: c.classes,
    ...(c.labels ? { labels: c.labels } : {}),
    softmax: c.softmax,
    confidence: {
      mean: Number.isFinite(mean) ? mean : 0,
      quantiles: QUANTILES.map((p) => (finiteConf.length ? quantileSorted(finiteConf, p) : 0)) as [
        number,
        number,
        number,
        number,
        number,
      ],
    },
  };
  // Targets: a class index, or a label resolved through the labels.
  const scores: number[] = [];
  const correct: number[] = [];
  targets.forEach((t, i) => {
    if (t === undefined) return;
    const k = typeof t === 'number' ? t : (c.labels?.indexOf(t) ?? Number(t));
    const p = predicted[i]!;
    const s = confidence[i]!;
    if (!Number.isFinite(p) || !Number.isFinite(s) || !(k >= 0)) return;
    scores.push(s);
    correct.push(p === k ? 1 : 0);
  });
  if (scores.length > 0) {
    summary.accuracy = correct.reduce((s, x) => s + x, 0) / correct.length;
    summary.calibrator = compressCalibrator(scores, correct);
  }
  return summary;
}

/** Isotonic fit, then at most 64 steps (merging neighbours by sample weight keeps it monotone). */
function compressCalibrator(scores: number[], correct: number[]): { x: number[]; y: number[] } {
  const full = fitIsotonic(scores, correct);
  if (full.x.length <= MAX_CALIBRATOR_STEPS) return full;
  const sorted = [...scores].sort((a, b) => a - b);
  const x: number[] = [];
  const y: number[] = [];
  for (let k = 0; k < MAX_CALIBRATOR_STEPS; k++) {
    const lo = Math.floor((k * sorted.length) / MAX_CALIBRATOR_STEPS);
    const hi = Math.floor(((k + 1) * sorted.length) / MAX_CALIBRATOR_STEPS);
    if (hi <= lo) continue;
    let sum = 0;
    for (let i = lo; i < hi; i++) sum += calibrate(full, sorted[i]!);
    const xv = k === 0 ? sorted[0]! : sorted[lo]!;
    if (x.length && xv <= x[x.length - 1]!) continue;
    x.push(xv);
    y.push(Math.max(y.length ? y[y.length - 1]! : 0, sum / (hi - lo)));
  }
  return { x, y };
}

function imageSummary(
  image: NonNullable<Plan['image']>,
  rows: readonly ReferenceRow[],
): NonNullable<ReferenceProfile['image']> {
  const C = image.channels;
  const acc = Array.from({ length: C }, () => ({ n: 0, sum: 0, sumSq: 0, min: Infinity, max: -Infinity }));
  for (const row of rows) {
    const t = row.inputs[image.input];
    if (!t) continue;
    const plane = t.shape.length >= 3 ? t.shape[t.shape.length - 1]! * t.shape[t.shape.length - 2]! : 1;
    for (let i = 0; i < t.data.length; i++) {
      const x = readNumber(t, i);
      if (!Number.isFinite(x)) continue;
      const c = image.layout === 'NHWC' ? i % C : Math.floor(i / plane) % C;
      const a = acc[c]!;
      a.n++;
      a.sum += x;
      a.sumSq += x * x;
      if (x < a.min) a.min = x;
      if (x > a.max) a.max = x;
    }
  }
  return {
    input: image.input,
    layout: image.layout,
    channels: acc.map((a) => {
      const mean = a.n ? a.sum / a.n : 0;
      return {
        mean,
        std: a.n ? Math.sqrt(Math.max(0, a.sumSq / a.n - mean * mean)) : 0,
        min: a.n ? a.min : 0,
        max: a.n ? a.max : 0,
      };
    }),
  };
}
