/**
 * Reading variable values from one inference: the same code runs in the profile builder (on the
 * reference rows) and on the device (on live traffic), so both count into identical bins.
 * A value is a number; NaN means invalid or missing. Categorical values are class indexes.
 * Tensor lookups are resolved once per inference, not per value: this runs on small devices.
 */
import type { ReferenceProfile, VariableSource } from './profile-schema.ts';
import { readNumber, samplesIn, type TensorLike } from './tensors.ts';

export interface InferenceTensors {
  inputs: Record<string, TensorLike>;
  outputs: Record<string, TensorLike> | null;
}

interface ClassView {
  argmax: number;
  max: number;
  probs: Float64Array;
}

/** Reads every variable of a profile, sample by sample, from one inference's tensors. */
export interface SampleReader {
  /** How many samples the tensors hold (a batch); 0 when none of them has the expected size. */
  samples(): number;
  /** Variable i's value in sample s (NaN = invalid or missing). */
  value(i: number, s: number): number;
}

interface Resolved {
  t: TensorLike;
  per: number;
  n: number;
}

/** A reader factory for a profile's variables (per-sample element counts come from the profile). */
export function sampleReader(profile: {
  tensors: ReferenceProfile['tensors'];
  variables: readonly { source: VariableSource }[];
}): (t: InferenceTensors) => SampleReader {
  const tensors = profile.tensors;
  const sources = profile.variables.map((v) => v.source);
  const tensorIndex = sources.map((src) =>
    tensors.findIndex((t) => t.tensor === src.tensor && t.name === src.name),
  );
  return (event) => {
    const resolved: (Resolved | undefined)[] = tensors.map((spec) => {
      const t = spec.tensor === 'input' ? event.inputs[spec.name] : event.outputs?.[spec.name];
      if (!t) return undefined;
      const n = samplesIn(t, spec.elements);
      return n === undefined ? undefined : { t, per: spec.elements, n };
    });
    // Per (tensor, sample, softmax) caches, for classifier and image variables that share a tensor.
    let classCache: Map<number, ClassView | null> | undefined;
    let channelCache: Map<number, { mean: Float64Array; std: Float64Array } | null> | undefined;
    const at = (i: number, s: number) => {
      const r = resolved[tensorIndex[i]!];
      return r && s < r.n ? r : undefined;
    };
    const classView = (i: number, s: number, softmax: boolean): ClassView | null => {
      classCache ??= new Map();
      const key = (tensorIndex[i]! * 2 + (softmax ? 1 : 0)) * 1_000_000 + s;
      let view = classCache.get(key);
      if (view === undefined) {
        const r = at(i, s);
        view = r ? classify(r.t, s * r.per, r.per, softmax) : null;
        classCache.set(key, view);
      }
      return view;
    };
    const channelView = (
      i: number,
      s: number,
      src: Extract<VariableSource, { op: 'channel-mean' | 'channel-std' }>,
    ) => {
      channelCache ??= new Map();
      const key = tensorIndex[i]! * 1_000_000 + s;
      let view = channelCache.get(key);
      if (view === undefined) {
        const r = at(i, s);
        view = r ? channelStats(r.t, s * r.per, r.per, src.layout, src.channels) : null;
        channelCache.set(key, view);
      }
      return view;
    };
    return {
      samples() {
        let best = 0;
        for (const r of resolved) if (r && r.n > best) best = r.n;
        return best;
      },
      value(i, s) {
        const src = sources[i]!;
        switch (src.op) {
          case 'element': {
            const r = at(i, s);
            return r && src.index < r.per ? readNumber(r.t, s * r.per + src.index) : Number.NaN;
          }
          case 'mean':
          case 'std': {
            const r = at(i, s);
            if (!r) return Number.NaN;
            const m = moments(r.t, s * r.per, r.per, 0, 1);
            return src.op === 'mean' ? m.mean : m.std;
          }
          case 'channel-mean':
          case 'channel-std': {
            const c = channelView(i, s, src);
            if (!c || src.channel >= c.mean.length) return Number.NaN;
            return src.op === 'channel-mean' ? c.mean[src.channel]! : c.std[src.channel]!;
          }
          case 'argmax':
            return classView(i, s, false)?.argmax ?? Number.NaN;
          case 'max-prob':
            return classView(i, s, src.softmax)?.max ?? Number.NaN;
          case 'prob': {
            const v = classView(i, s, src.softmax);
            return v && src.index < v.probs.length ? v.probs[src.index]! : Number.NaN;
          }
        }
      },
    };
  };
}

function moments(t: TensorLike, offset: number, length: number, start: number, stride: number) {
  let n = 0;
  let sum = 0;
  let sumSq = 0;
  for (let i = start; i < length; i += stride) {
    const x = readNumber(t, offset + i);
    if (!Number.isFinite(x)) return { mean: Number.NaN, std: Number.NaN };
    n++;
    sum += x;
    sumSq += x * x;
  }
  const mean = sum / n;
  return { mean, std: Math.sqrt(Math.max(0, sumSq / n - mean * mean)) };
}

function channelStats(
  t: TensorLike,
  offset: number,
  length: number,
  layout: 'NCHW' | 'NHWC',
  channels: number,
) {
  const mean = new Float64Array(channels);
  const std = new Float64Array(channels);
  const plane = length / channels;
  for (let c = 0; c < channels; c++) {
    const m =
      layout === 'NCHW'
        ? moments(t, offset + c * plane, plane, 0, 1)
        : moments(t, offset, length, c, channels);
    mean[c] = m.mean;
    std[c] = m.std;
  }
  return { mean, std };
}

function classify(t: TensorLike, offset: number, length: number, softmax: boolean): ClassView | null {
  const probs = new Float64Array(length);
  let max = Number.NEGATIVE_INFINITY;
  let argmax = -1;
  for (let i = 0; i < length; i++) {
    const x = readNumber(t, offset + i);
    if (Number.isNaN(x)) return null;
    probs[i] = x;
    if (x > max) {
      max = x;
      argmax = i;
    }
  }
  if (argmax < 0) return null;
  if (softmax) {
    let z = 0;
    for (let i = 0; i < length; i++) z += Math.exp(probs[i]! - max);
    for (let i = 0; i < length; i++) probs[i] = Math.exp(probs[i]! - max) / z;
  }
  return { argmax, max: probs[argmax]!, probs };
}
