/**
 * Gates on model behaviour during a batch's soak: the new version's error rate and latency p95 on
 * the updated devices against what the same devices showed before the update, its drift status and
 * its shadow agreement. A gate with too little traffic to judge says so and does not trip.
 */
import type { TelemetrySample } from '@edgefleet/protocol';
import type { HubContext } from '../context.ts';
import type { RolloutDeviceRecord, RolloutRecord } from '../store/rollouts.ts';
import { shadowAgreement } from './shadow.ts';

/** Requests needed on each side before a behaviour gate may trip. */
export const MIN_REQUESTS = 30;
/** How far back before the update the baseline reaches. */
const BASELINE_WINDOW_MS = 5 * 60_000;

export interface GateReading {
  gate: 'error-rate' | 'latency-p95' | 'drift' | 'shadow-agreement';
  status: 'pass' | 'fail' | 'insufficient-data' | 'not-configured';
  baseline: number | null;
  candidate: number | null;
  limit: number | null;
  detail: string;
}

export interface GateReport {
  evaluatedAt: string;
  readings: GateReading[];
  failed: GateReading | undefined;
}

interface Aggregate {
  requests: number;
  errors: number;
  /**
   * Request-weighted median of the samples' p95 latencies: robust against the odd slow window
   * (a warm-up, a busy moment) that a mean would let dominate.
   */
  latencyP95: number | null;
}

export function aggregate(samples: readonly TelemetrySample[]): Aggregate {
  let requests = 0;
  let errors = 0;
  const p95s: { value: number; weight: number }[] = [];
  for (const s of samples) {
    if (!s.inference) continue;
    requests += s.inference.requests;
    errors += s.inference.errors;
    if (s.inference.latency_p95_ms !== null && s.inference.requests > 0)
      p95s.push({ value: s.inference.latency_p95_ms, weight: s.inference.requests });
  }
  p95s.sort((a, b) => a.value - b.value);
  const half = p95s.reduce((sum, p) => sum + p.weight, 0) / 2;
  let seen = 0;
  let median: number | null = null;
  for (const p of p95s) {
    seen += p.weight;
    if (seen >= half) {
      median = p.value;
      break;
    }
  }
  return { requests, errors, latencyP95: median };
}

/** Error-rate gate: trips on a ratio (with a one-point floor, so 0.1% → 0.2% is no alarm) or an absolute ceiling. */
export function errorRateGate(
  before: Aggregate,
  after: Aggregate,
  ratio: number | undefined,
  maxPct: number | undefined,
): GateReading {
  const base = before.requests > 0 ? (100 * before.errors) / before.requests : null;
  const cand = after.requests > 0 ? (100 * after.errors) / after.requests : null;
  if (ratio === undefined && maxPct === undefined) {
    return {
      gate: 'error-rate',
      status: 'not-configured',
      baseline: base,
      candidate: cand,
      limit: null,
      detail: 'no error-rate gate',
    };
  }
  if (after.requests < MIN_REQUESTS || cand === null) {
    return {
      gate: 'error-rate',
      status: 'insufficient-data',
      baseline: base,
      candidate: cand,
      limit: null,
      detail: `${after.requests} requests on the new version (need ${MIN_REQUESTS})`,
    };
  }
  const limits: number[] = [];
  if (maxPct !== undefined) limits.push(maxPct);
  if (ratio !== undefined && base !== null && before.requests >= MIN_REQUESTS)
    limits.push(Math.max(base * ratio, base + 1));
  if (limits.length === 0) {
    return {
      gate: 'error-rate',
      status: 'insufficient-data',
      baseline: base,
      candidate: cand,
      limit: null,
      detail: `${before.requests} requests before the update (need ${MIN_REQUESTS})`,
    };
  }
  const limit = Math.min(...limits);
  const status = cand > limit ? 'fail' : 'pass';
  return {
    gate: 'error-rate',
    status,
    baseline: base,
    candidate: cand,
    limit,
    detail: `error rate ${cand.toFixed(2)}% vs ${base?.toFixed(2) ?? '-'}% before (limit ${limit.toFixed(2)}%)`,
  };
}

export function latencyGate(before: Aggregate, after: Aggregate, ratio: number | undefined): GateReading {
  const [base, cand] = [before.latencyP95, after.latencyP95];
  if (ratio === undefined)
    return {
      gate: 'latency-p95',
      status: 'not-configured',
      baseline: base,
      candidate: cand,
      limit: null,
      detail: 'no latency gate',
    };
  if (after.requests < MIN_REQUESTS || before.requests < MIN_REQUESTS || base === null || cand === null) {
    return {
      gate: 'latency-p95',
      status: 'insufficient-data',
      baseline: base,
      candidate: cand,
      limit: null,
      detail: `requests before/after: ${before.requests}/${after.requests} (need ${MIN_REQUESTS} each)`,
    };
  }
  const limit = base * ratio;
  return {
    gate: 'latency-p95',
    status: cand > limit ? 'fail' : 'pass',
    baseline: base,
    candidate: cand,
    limit,
    detail: `p95 ${cand.toFixed(2)} ms vs ${base.toFixed(2)} ms before (${(cand / base).toFixed(2)}×, limit ${ratio}×)`,
  };
}

/** Evaluate every configured gate over the devices of this rollout that run the new version. */
export async function evaluateGates(
  ctx: HubContext,
  rollout: RolloutRecord,
  members: readonly RolloutDeviceRecord[],
  now = new Date(),
): Promise<GateReport> {
  const gates = rollout.plan.gates ?? {};
  const beforeSamples: TelemetrySample[] = [];
  const afterSamples: TelemetrySample[] = [];
  for (const m of members) {
    if (m.state !== 'active' || !m.activeAt || !m.assignedAt) continue;
    const assigned = Date.parse(m.assignedAt);
    beforeSamples.push(
      ...(await ctx.store.devices.telemetryBetween(
        m.deviceId,
        new Date(assigned - BASELINE_WINDOW_MS).toISOString(),
        m.assignedAt,
      )),
    );
    afterSamples.push(
      ...(await ctx.store.devices.telemetryBetween(m.deviceId, m.activeAt, now.toISOString())),
    );
  }
  const before = aggregate(beforeSamples);
  const after = aggregate(afterSamples);
  const readings: GateReading[] = [
    errorRateGate(before, after, gates.errorRateRatio, gates.maxErrorRatePct),
    latencyGate(before, after, gates.latencyP95Ratio),
  ];
  if (gates.drift) {
    const drift = ctx.driftStatus ? await ctx.driftStatus(rollout.model, rollout.version) : undefined;
    const order = { ok: 0, warning: 1, drift: 2 } as const;
    readings.push(
      drift
        ? {
            gate: 'drift',
            status: order[drift.status] >= order[gates.drift] ? 'fail' : 'pass',
            baseline: null,
            candidate: order[drift.status],
            limit: order[gates.drift],
            detail: `drift status ${drift.status}${drift.variables.length ? ` (${drift.variables.join(', ')})` : ''}`,
          }
        : {
            gate: 'drift',
            status: 'insufficient-data',
            baseline: null,
            candidate: null,
            limit: null,
            detail: 'no drift evaluation yet',
          },
    );
  }
  if (gates.minShadowAgreementPct !== undefined) {
    const shadow = await shadowAgreement(ctx, rollout, now);
    readings.push(
      shadow && shadow.compared >= MIN_REQUESTS
        ? {
            gate: 'shadow-agreement',
            status: shadow.agreementPct < gates.minShadowAgreementPct ? 'fail' : 'pass',
            baseline: null,
            candidate: shadow.agreementPct,
            limit: gates.minShadowAgreementPct,
            detail: `${shadow.agreementPct.toFixed(1)}% agreement over ${shadow.compared} shadowed requests, latency ${shadow.latencyDeltaMs?.toFixed(2) ?? '-'} ms vs the active model`,
          }
        : {
            gate: 'shadow-agreement',
            status: 'insufficient-data',
            baseline: null,
            candidate: shadow?.agreementPct ?? null,
            limit: gates.minShadowAgreementPct,
            detail: `${shadow?.compared ?? 0} shadowed requests (need ${MIN_REQUESTS})`,
          },
    );
  }
  return { evaluatedAt: now.toISOString(), readings, failed: readings.find((r) => r.status === 'fail') };
}
