/** Merging windows: counts and sums add, min/max take the extremes. Exact and order-free. */
import { DriftError } from '../errors.ts';
import type { ReferenceProfile } from '../profile-schema.ts';
import { LATENCY_BOUNDS_MS } from './latency.ts';
import type { VariableWindow, WindowStats } from './window.ts';

/** An empty window in a profile's bins. */
export function emptyWindow(profile: ReferenceProfile): WindowStats {
  return {
    profile: profile.hash,
    n: 0,
    errors: 0,
    latency: new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0),
    vars: profile.variables.map((v) => ({
      counts: new Array<number>(v.kind === 'numeric' ? v.edges.length + 4 : v.categories.length + 2).fill(0),
    })),
    ...(profile.classifier?.calibrator
      ? {
          cbpe: {
            n: 0,
            correct: 0,
            ...(profile.classifier.classes === 2 ? { tp: 0, fp: 0, fn: 0, tn: 0 } : {}),
          },
        }
      : {}),
  };
}

function addInto(target: number[], source: readonly number[]): void {
  for (let i = 0; i < source.length; i++) target[i]! += source[i]!;
}

function mergeVariable(into: VariableWindow, from: VariableWindow): void {
  addInto(into.counts, from.counts);
  if (from.sum === undefined) return;
  if (into.sum === undefined) {
    into.sum = from.sum;
    into.sumSq = from.sumSq;
    into.min = from.min;
    into.max = from.max;
    return;
  }
  into.sum += from.sum;
  into.sumSq! += from.sumSq!;
  into.min = Math.min(into.min!, from.min!);
  into.max = Math.max(into.max!, from.max!);
}

/** Add `from` into `into` (mutates `into`); both must use the same profile and bin layout. */
export function mergeInto(into: WindowStats, from: WindowStats): WindowStats {
  if (into.profile !== from.profile)
    throw new DriftError(
      'DRIFT_PROFILE_MISMATCH',
      `cannot merge windows of profiles ${into.profile} and ${from.profile}`,
    );
  if (into.vars.length !== from.vars.length || into.latency.length !== from.latency.length)
    throw new DriftError('DRIFT_PROFILE_MISMATCH', 'cannot merge windows with different variables');
  for (let i = 0; i < from.vars.length; i++) {
    if (into.vars[i]!.counts.length !== from.vars[i]!.counts.length)
      throw new DriftError('DRIFT_PROFILE_MISMATCH', `variable ${i} has different bins in the two windows`);
    mergeVariable(into.vars[i]!, from.vars[i]!);
  }
  into.n += from.n;
  into.errors += from.errors;
  addInto(into.latency, from.latency);
  if (from.cbpe) {
    if (!into.cbpe) into.cbpe = { n: 0, correct: 0 };
    const a = into.cbpe;
    const b = from.cbpe;
    a.n += b.n;
    a.correct += b.correct;
    if (b.tp !== undefined) {
      a.tp = (a.tp ?? 0) + b.tp;
      a.fp = (a.fp ?? 0) + b.fp!;
      a.fn = (a.fn ?? 0) + b.fn!;
      a.tn = (a.tn ?? 0) + b.tn!;
    }
  }
  return into;
}

/** A deep copy (so merging never mutates a stored window). */
export function cloneWindow(w: WindowStats): WindowStats {
  return {
    ...w,
    latency: [...w.latency],
    vars: w.vars.map((v) => ({ ...v, counts: [...v.counts] })),
    ...(w.cbpe ? { cbpe: { ...w.cbpe } } : {}),
  };
}

/** Merge any number of windows into a new one; throws DRIFT_PROFILE_MISMATCH when they differ. */
export function mergeWindows(windows: readonly WindowStats[]): WindowStats {
  const [first, ...rest] = windows;
  if (!first) throw new DriftError('DRIFT_ARGUMENT_INVALID', 'nothing to merge');
  const out = cloneWindow(first);
  for (const w of rest) mergeInto(out, w);
  return out;
}
