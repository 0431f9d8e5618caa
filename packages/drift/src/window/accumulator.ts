/**
 * The device side: count each inference into the current window of a model version's profile.
 * Works with the agent's observer events ({latencyMs, error: Error|null}) and the browser SDK's
 * ({latency_ms, error?}). Cost per prediction: one binary search per numeric variable.
 */
import { binIndex } from '../binning.ts';
import { calibrate } from '../performance.ts';
import type { ReferenceProfile } from '../profile-schema.ts';
import type { TensorLike } from '../tensors.ts';
import { sampleReader } from '../variables.ts';
import { latencyBucket } from './latency.ts';
import { emptyWindow } from './merge.ts';
import { encodeWindow, type WindowPayload, type WindowStats } from './window.ts';

export interface ObservedInference {
  inputs: Record<string, TensorLike>;
  outputs?: Record<string, TensorLike> | null;
  latencyMs?: number;
  latency_ms?: number;
  /** Anything but null/undefined marks a failed inference. */
  error?: unknown;
}

export interface WindowAccumulator {
  /** Count one inference (all samples of a batch). Never throws on odd tensors: they count as invalid. */
  add(event: ObservedInference): void;
  /** Predictions in the current window. */
  readonly count: number;
  /** Inference calls (successful or not) in the current window. */
  readonly calls: number;
  /** The current window, decoded (a live view; do not keep it across take()). */
  peek(): WindowStats;
  /** Close the current window: its wire payload, and a fresh window begins. */
  take(): WindowPayload;
}

/** A window accumulator for one profile. */
export function createWindowAccumulator(profile: ReferenceProfile): WindowAccumulator {
  const reader = sampleReader(profile);
  const vars = profile.variables;
  // Categorical: class index → counts slot (1 + category position, or the trailing "other").
  const slots = vars.map((v) => {
    if (v.kind !== 'categorical') return undefined;
    const map = new Map<number, number>();
    const classes = v.classIndex ?? v.categories.map((_, i) => i);
    for (let pos = 0; pos < classes.length; pos++) map.set(classes[pos]!, 1 + pos);
    return { map, other: v.categories.length + 1 };
  });
  const cls = profile.classifier;
  const argmaxVar = vars.findIndex((v) => v.source.op === 'argmax');
  const confVar = vars.findIndex((v) => v.source.op === 'max-prob');
  const calibrator = cls?.calibrator && argmaxVar >= 0 && confVar >= 0 ? cls.calibrator : undefined;
  let w = emptyWindow(profile);
  let calls = 0;

  function addSample(read: ReturnType<ReturnType<typeof sampleReader>>, s: number): void {
    for (let i = 0; i < vars.length; i++) {
      const v = vars[i]!;
      const x = read.value(i, s);
      const target = w.vars[i]!;
      if (v.kind === 'categorical') {
        const slot = Number.isInteger(x) ? (slots[i]!.map.get(x) ?? slots[i]!.other) : 0;
        target.counts[slot]!++;
        continue;
      }
      const b = binIndex(v.edges, v.min, v.max, x);
      target.counts[b]!++;
      if (b === 0) continue;
      if (target.sum === undefined) {
        target.sum = x;
        target.sumSq = x * x;
        target.min = x;
        target.max = x;
      } else {
        target.sum += x;
        target.sumSq! += x * x;
        if (x < target.min!) target.min = x;
        if (x > target.max!) target.max = x;
      }
    }
    if (calibrator && w.cbpe) {
      const k = read.value(argmaxVar, s);
      const conf = read.value(confVar, s);
      if (!Number.isFinite(k) || !Number.isFinite(conf)) return;
      const pc = calibrate(calibrator, conf);
      const c = w.cbpe;
      c.n++;
      c.correct += pc;
      if (c.tp !== undefined) {
        if (k === 1) {
          c.tp += pc;
          c.fp! += 1 - pc;
        } else {
          c.tn! += pc;
          c.fn! += 1 - pc;
        }
      }
    }
  }

  return {
    add(event) {
      calls++;
      const ms = event.latencyMs ?? event.latency_ms;
      if (ms !== undefined && Number.isFinite(ms)) w.latency[latencyBucket(ms)]!++;
      if (event.error !== undefined && event.error !== null) {
        w.errors++;
        // A call that threw has nothing to count; one whose outputs came back NaN (the agent
        // counts that as an error too) still saw inputs, and those are the drift evidence.
        if (!event.outputs) return;
      }
      const read = reader({ inputs: event.inputs ?? {}, outputs: event.outputs ?? null });
      const samples = Math.max(1, read.samples());
      for (let s = 0; s < samples; s++) addSample(read, s);
      w.n += samples;
    },
    get count() {
      return w.n;
    },
    get calls() {
      return calls;
    },
    peek() {
      return w;
    },
    take() {
      const payload = encodeWindow(w);
      w = emptyWindow(profile);
      calls = 0;
      return payload;
    },
  };
}
