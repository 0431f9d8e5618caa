/**
 * Window statistics: what a device counted for one model version over one window, against the
 * bins of its reference profile. Everything in it merges by addition (min/max by min/max), so
 * windows roll up across time and devices exactly. On the wire (inside the stats envelope's
 * `window`) each variable is one base64url string; see codec.ts.
 */
import { z } from 'zod';
import { DriftError } from '../errors.ts';
import type { ReferenceProfile } from '../profile-schema.ts';
import { ByteReader, ByteWriter, float32Toward, fromBase64Url, toBase64Url } from './codec.ts';
import { LATENCY_BOUNDS_MS } from './latency.ts';

export interface VariableWindow {
  /** Numeric: [invalid, below-min, bins…, above-max]; categorical: [invalid, categories…, other]. */
  counts: number[];
  /** Numeric, over finite values (absent when there were none): Σx, Σx², min, max. */
  sum?: number;
  sumSq?: number;
  min?: number;
  max?: number;
}

/** Sums for confidence-based performance estimation (present when the profile has a calibrator). */
export interface CbpeSums {
  /** Predictions counted. */
  n: number;
  /** Σ P(correct) from the calibrator: the expected number of correct predictions. */
  correct: number;
  /** Binary classifiers: expected confusion matrix (positive = class 1). */
  tp?: number;
  fp?: number;
  fn?: number;
  tn?: number;
}

export interface WindowStats {
  /** Hash of the reference profile whose bins were used. */
  profile: string;
  /** Predictions (samples) counted. */
  n: number;
  /** Inference calls that failed. */
  errors: number;
  /** Inference calls per latency bucket (LATENCY_BOUNDS_MS, plus overflow). */
  latency: number[];
  /** One entry per profile variable, in profile order. */
  vars: VariableWindow[];
  cbpe?: CbpeSums;
}

const b64 = z
  .string()
  .max(100_000)
  .regex(/^[A-Za-z0-9_-]*$/, 'base64url');

/** The wire form of a window (statsWindowEnvelope.window). */
export const windowPayload = z
  .object({
    format: z.literal(1),
    profile: z.string().regex(/^[0-9a-f]{16}$/),
    n: z.number().int().nonnegative(),
    errors: z.number().int().nonnegative(),
    latency: b64,
    vars: z.array(b64).max(256),
    cbpe: b64.optional(),
  })
  .strict();
export type WindowPayload = z.infer<typeof windowPayload>;

/** Encode a window for the wire. */
export function encodeWindow(w: WindowStats): WindowPayload {
  const latency = new ByteWriter();
  latency.counts(w.latency);
  const vars = w.vars.map((v) => {
    const out = new ByteWriter();
    out.counts(v.counts);
    if (v.sum !== undefined && v.sumSq !== undefined && v.min !== undefined && v.max !== undefined) {
      out.float64(v.sum);
      out.float64(v.sumSq);
      // min/max only bound the guard bins (W1) and are displayed: float32 rounded outward suffices.
      out.float32(float32Toward(v.min, 'down'));
      out.float32(float32Toward(v.max, 'up'));
    }
    return toBase64Url(out.bytes());
  });
  const payload: WindowPayload = {
    format: 1,
    profile: w.profile,
    n: w.n,
    errors: w.errors,
    latency: toBase64Url(latency.bytes()),
    vars,
  };
  if (w.cbpe) {
    const c = new ByteWriter();
    c.varint(w.cbpe.n);
    for (const x of [w.cbpe.correct, w.cbpe.tp, w.cbpe.fp, w.cbpe.fn, w.cbpe.tn])
      if (x !== undefined) c.float64(x);
    payload.cbpe = toBase64Url(c.bytes());
  }
  return payload;
}

const B64URL = /^[A-Za-z0-9_-]*$/;
const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x) && x >= 0;
const isB64 = (x: unknown): x is string => typeof x === 'string' && x.length <= 100_000 && B64URL.test(x);

/** The schema check without zod's cost on the hub's hot path (zod runs only to word a failure). */
function quickCheck(x: unknown): x is WindowPayload {
  if (typeof x !== 'object' || x === null) return false;
  const p = x as Record<string, unknown>;
  for (const k in p) if (!KEYS.has(k)) return false;
  return (
    p.format === 1 &&
    typeof p.profile === 'string' &&
    /^[0-9a-f]{16}$/.test(p.profile) &&
    isCount(p.n) &&
    isCount(p.errors) &&
    isB64(p.latency) &&
    Array.isArray(p.vars) &&
    p.vars.length <= 256 &&
    p.vars.every(isB64) &&
    (p.cbpe === undefined || isB64(p.cbpe))
  );
}
const KEYS = new Set(['format', 'profile', 'n', 'errors', 'latency', 'vars', 'cbpe']);

/** Decode and validate a wire window; throws DriftError DRIFT_WINDOW_INVALID. */
export function decodeWindow(input: unknown): WindowStats {
  if (!quickCheck(input)) {
    const parsed = windowPayload.safeParse(input);
    const issue = parsed.success ? undefined : parsed.error.issues[0];
    throw new DriftError(
      'DRIFT_WINDOW_INVALID',
      `window payload: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const p = input;
  const latency = new ByteReader(fromBase64Url(p.latency)).counts(LATENCY_BOUNDS_MS.length + 1);
  const vars = p.vars.map((text, i) => {
    const r = new ByteReader(fromBase64Url(text));
    const v: VariableWindow = { counts: r.counts(100_000) };
    if (r.remaining === 24) {
      v.sum = r.float64();
      v.sumSq = r.float64();
      v.min = r.float32();
      v.max = r.float32();
    } else if (r.remaining !== 0)
      throw new DriftError(
        'DRIFT_WINDOW_INVALID',
        `window payload: vars.${i} has ${r.remaining} stray bytes`,
      );
    return v;
  });
  const w: WindowStats = { profile: p.profile, n: p.n, errors: p.errors, latency, vars };
  if (p.cbpe !== undefined) {
    const r = new ByteReader(fromBase64Url(p.cbpe));
    const n = r.varint();
    const floats: number[] = [];
    while (r.remaining >= 8) floats.push(r.float64());
    if (r.remaining !== 0 || (floats.length !== 1 && floats.length !== 5))
      throw new DriftError('DRIFT_WINDOW_INVALID', 'window payload: cbpe has the wrong size');
    w.cbpe = { n, correct: floats[0]! };
    if (floats.length === 5)
      Object.assign(w.cbpe, { tp: floats[1], fp: floats[2], fn: floats[3], tn: floats[4] });
  }
  return w;
}

/** Throw DRIFT_PROFILE_MISMATCH unless the window was counted in this profile's bins. */
export function checkWindow(profile: ReferenceProfile, w: WindowStats): void {
  const mismatch = (why: string) =>
    new DriftError('DRIFT_PROFILE_MISMATCH', `window does not fit profile ${profile.hash}: ${why}`);
  if (w.profile !== profile.hash) throw mismatch(`it names profile ${w.profile}`);
  if (w.vars.length !== profile.variables.length)
    throw mismatch(`${w.vars.length} variables, expected ${profile.variables.length}`);
  profile.variables.forEach((v, i) => {
    const expected = v.kind === 'numeric' ? v.edges.length + 4 : v.categories.length + 2;
    if (w.vars[i]!.counts.length !== expected)
      throw mismatch(`variable "${v.name}" has ${w.vars[i]!.counts.length} counts, expected ${expected}`);
  });
  if (w.latency.length !== LATENCY_BOUNDS_MS.length + 1)
    throw mismatch('latency histogram has the wrong length');
}
