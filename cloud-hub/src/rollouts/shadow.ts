/**
 * Shadow mode: before the first batch switches, its devices run the candidate beside their active
 * model on live traffic without serving it. The hub reads agreement and latency from their
 * telemetry; a candidate that disagrees too often never goes live.
 */
import type { HubContext } from '../context.ts';
import type { RolloutDeviceRecord, RolloutRecord } from '../store/rollouts.ts';
import { chooseArtifactFor } from './artifact-choice.ts';
import { currentlyRunning, desiredEntry, signedVersionOf } from './assign.ts';
import { setDesiredModel } from './desired.ts';
import { engineState, saveEngineState } from './engine-state.ts';

export interface ShadowAgreement {
  agreementPct: number;
  compared: number;
  /** Mean extra latency of the candidate over the active model, per request. */
  latencyDeltaMs: number | null;
}

/** Agreement of the candidate over the shadowing devices' telemetry since the shadow started. */
export async function shadowAgreement(
  ctx: HubContext,
  rollout: RolloutRecord,
  now = new Date(),
): Promise<ShadowAgreement | undefined> {
  const shadow = engineState(rollout).shadow;
  if (!shadow) return undefined;
  let compared = 0;
  let agreed = 0;
  let delta = 0;
  for (const deviceId of shadow.devices) {
    for (const sample of await ctx.store.devices.telemetryBetween(
      deviceId,
      shadow.startedAt,
      now.toISOString(),
    )) {
      for (const s of sample.shadow ?? []) {
        if (s.model !== rollout.model || s.candidate_version !== rollout.version) continue;
        compared += s.compared;
        agreed += s.agreed;
        if (s.latency_delta_ms !== null) delta += s.latency_delta_ms * s.compared;
      }
    }
  }
  return {
    compared,
    agreementPct: compared > 0 ? (100 * agreed) / compared : 0,
    latencyDeltaMs: compared > 0 ? delta / compared : null,
  };
}

async function setShadowOn(
  ctx: HubContext,
  rollout: RolloutRecord,
  deviceIds: readonly string[],
  on: boolean,
): Promise<string[]> {
  const signed = await signedVersionOf(ctx, rollout.model, rollout.version);
  const done: string[] = [];
  for (const id of deviceIds) {
    const device = await ctx.store.devices.get(id);
    if (!device || !signed) continue;
    const current =
      device.desired?.models[rollout.model] ?? (await currentlyRunning(ctx, device, rollout.model));
    if (!current) continue; // nothing running to shadow
    if (!on) {
      const { shadow: _removed, ...rest } = current;
      await setDesiredModel(ctx, id, rollout.model, rest);
      continue;
    }
    const choice = chooseArtifactFor(device, signed.manifest);
    if (!choice.artifact) continue;
    const { shadow: _old, ...base } = desiredEntry(signed, rollout.id, choice.artifact);
    await setDesiredModel(ctx, id, rollout.model, { ...current, shadow: base });
    done.push(id);
  }
  return done;
}

export type ShadowStep = 'continue' | 'wait' | { trip: string };

/** Run the shadow phase of a rollout's first batch; `continue` once it is over (or not asked for). */
export async function shadowPhase(
  ctx: HubContext,
  rollout: RolloutRecord,
  members: readonly RolloutDeviceRecord[],
  now: Date,
): Promise<ShadowStep> {
  const seconds = rollout.plan.shadowSeconds ?? 0;
  const state = engineState(rollout).shadow;
  if (seconds <= 0 || rollout.currentBatch !== 0 || state?.done) return 'continue';
  if (!state) {
    const canaries = members.filter((m) => m.batch === 0 && m.state === 'pending').map((m) => m.deviceId);
    const devices = await setShadowOn(ctx, rollout, canaries, true);
    await saveEngineState(ctx, rollout, { shadow: { startedAt: now.toISOString(), devices, done: false } });
    await ctx.store.events.add({
      kind: 'rollout.shadow-started',
      subject: rollout.id,
      actor: null,
      message: `${rollout.version} shadows the active model on ${devices.length} device(s) for ${seconds} s`,
    });
    ctx.live.emit({ type: 'rollout', rolloutId: rollout.id });
    return devices.length > 0 ? 'wait' : 'continue';
  }
  const minPct = rollout.plan.gates?.minShadowAgreementPct;
  const agreement = await shadowAgreement(ctx, rollout, now);
  const failing =
    minPct !== undefined &&
    agreement !== undefined &&
    agreement.compared >= 30 &&
    agreement.agreementPct < minPct;
  if (!failing && now.getTime() - Date.parse(state.startedAt) < seconds * 1000) return 'wait';
  await setShadowOn(ctx, rollout, state.devices, false);
  await saveEngineState(ctx, rollout, { shadow: { ...state, done: true } });
  const summary = agreement
    ? `${agreement.agreementPct.toFixed(1)}% agreement over ${agreement.compared} requests, ${agreement.latencyDeltaMs?.toFixed(2) ?? '-'} ms latency delta`
    : 'no comparisons';
  await ctx.store.events.add({
    kind: 'rollout.shadow-finished',
    subject: rollout.id,
    actor: null,
    message: summary,
    data: agreement,
  });
  if (failing) return { trip: `gate shadow-agreement tripped: ${summary} (limit ${minPct}%)` };
  // A configured gate that never saw enough traffic must not wave the candidate through.
  if (minPct !== undefined && (agreement?.compared ?? 0) < 30) {
    return { trip: `gate shadow-agreement could not judge: ${summary} (need 30 comparisons)` };
  }
  return 'continue';
}

/** End a shadow phase early (the rollout stopped): devices stop running the candidate. */
export async function stopShadow(ctx: HubContext, rollout: RolloutRecord): Promise<void> {
  const state = engineState(rollout).shadow;
  if (!state || state.done) return;
  await setShadowOn(ctx, rollout, state.devices, false);
  await saveEngineState(ctx, rollout, { shadow: { ...state, done: true } });
}
