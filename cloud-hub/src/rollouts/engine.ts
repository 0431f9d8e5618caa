/**
 * Rollouts: a model version goes to the selected devices in batches. `advance` is the one step
 * function, called on start, on every device report, on the periodic tick and on operator actions;
 * it is idempotent, so a rollout never depends on any single call and never wedges.
 *
 * A batch installs (devices report their states; silent ones time out), must reach the success
 * threshold, then soaks while the gates watch the new version's behaviour; then the next batch
 * starts (after a manual approval when the plan asks). Too many failures or a tripped gate pause
 * the rollout or roll the fleet back, as the plan says.
 */
import { randomBytes } from 'node:crypto';
import type { ReportedState, TargetSelector } from '@edgefleet/protocol';
import type { HubContext } from '../context.ts';
import { HubError, notFound } from '../errors.ts';
import {
  type RolloutDeviceRecord,
  type RolloutDeviceState,
  type RolloutPlan,
  type RolloutRecord,
  type RolloutState,
  terminalDeviceStates,
} from '../store/rollouts.ts';
import { assignPending, resendAssignment, rollbackDevices } from './assign.ts';
import { engineState, saveEngineState } from './engine-state.ts';
import { evaluateGates } from './gates.ts';
import { failureBudget, withDefaults } from './plan.ts';
import { shadowPhase, stopShadow } from './shadow.ts';
import { queueStep } from './step-queue.ts';
import { batchSizes, selectDevices } from './targets.ts';

export interface StartRollout {
  model: string;
  version: string;
  selector: TargetSelector;
  plan?: Partial<RolloutPlan>;
  actor: string | null;
}

const isTerminal = (s: RolloutDeviceState) => terminalDeviceStates.includes(s);
const failedStates: readonly RolloutDeviceState[] = ['failed', 'rolled-back', 'timed-out'];

async function record(
  ctx: HubContext,
  rolloutId: string,
  kind: string,
  actor: string | null,
  message: string,
  data?: unknown,
) {
  await ctx.store.events.add({
    kind: `rollout.${kind}`,
    subject: rolloutId,
    actor,
    message,
    ...(data !== undefined ? { data } : {}),
  });
  ctx.live.emit({ type: 'rollout', rolloutId });
}

export async function startRollout(ctx: HubContext, input: StartRollout): Promise<RolloutRecord> {
  if (!(await ctx.store.models.getVersion(input.model, input.version)))
    throw notFound(`${input.model}@${input.version}`);
  const plan = withDefaults(input.plan);
  const devices = selectDevices(await ctx.store.devices.list(), input.selector);
  if (devices.length === 0)
    throw new HubError('VALIDATION_FAILED', 'no enrolled device matches the target', {
      details: { field: 'target' },
    });

  // A newer rollout of the same model supersedes older ones still in flight.
  for (const older of await ctx.store.rollouts.list({
    model: input.model,
    states: ['running', 'paused', 'awaiting-approval'],
  })) {
    await ctx.store.rollouts.setState(older.id, 'superseded', `superseded by ${input.version}`);
    await stopShadow(ctx, older);
    for (const d of await ctx.store.rollouts.devices(older.id)) {
      if (!isTerminal(d.state))
        await ctx.store.rollouts.updateDevice(older.id, d.deviceId, {
          state: 'cancelled',
          reason: 'rollout superseded',
        });
    }
    await record(ctx, older.id, 'superseded', input.actor, `superseded by a rollout of ${input.version}`);
  }

  // Online devices first, so the canary batch is made of devices that can answer.
  const ordered = [...devices].sort(
    (a, b) => Number(b.status === 'online') - Number(a.status === 'online') || a.name.localeCompare(b.name),
  );
  const sizes = batchSizes(plan.batches, ordered.length);
  let offset = 0;
  const members = sizes.flatMap((size, batch) => {
    const slice = ordered.slice(offset, offset + size).map((d) => ({ deviceId: d.id, batch }));
    offset += size;
    return slice;
  });
  const id = `ro-${randomBytes(5).toString('hex')}`;
  await ctx.store.rollouts.insert({
    id,
    model: input.model,
    version: input.version,
    selector: input.selector,
    plan,
    createdBy: input.actor,
    devices: members,
  });
  await record(
    ctx,
    id,
    'started',
    input.actor,
    `${input.model}@${input.version} to ${members.length} device(s) in batches of ${sizes.join(', ')}`,
    { plan, selector: input.selector },
  );
  await advance(ctx, id);
  return (await ctx.store.rollouts.get(id)) as RolloutRecord;
}

/** Stop a rollout that failed: pause for a human, or return the fleet to its last good version. */
async function trip(ctx: HubContext, rollout: RolloutRecord, reason: string): Promise<void> {
  await stopShadow(ctx, rollout);
  if (rollout.plan.onFailure === 'rollback') {
    if (!(await ctx.store.rollouts.setState(rollout.id, 'rolled-back', reason, ['running']))) return;
    const n = await rollbackDevices(ctx, rollout, reason);
    await record(
      ctx,
      rollout.id,
      'rolled-back',
      null,
      `${reason}; ${n} device(s) returned to their previous version`,
    );
  } else {
    if (!(await ctx.store.rollouts.setState(rollout.id, 'paused', reason, ['running']))) return;
    await record(ctx, rollout.id, 'paused', null, reason);
  }
}

/** One idempotent step of a rollout. */
/**
 * One step of a rollout, by whichever replica holds its lease; the others skip (the periodic tick
 * retries), so a step happens once however many hubs see the same device report.
 */
export async function advance(ctx: HubContext, rolloutId: string, now?: Date): Promise<void> {
  await queueStep(ctx, rolloutId, () => leasedStep(ctx, rolloutId, now));
}

async function leasedStep(ctx: HubContext, rolloutId: string, now: Date | undefined): Promise<void> {
  const lease = `rollout:${rolloutId}`;
  if (!(await ctx.store.leases.acquire(lease, ctx.replicaId, 60_000))) return;
  try {
    await step(ctx, rolloutId, now ?? new Date());
  } finally {
    await ctx.store.leases.release(lease, ctx.replicaId);
  }
}

async function step(ctx: HubContext, rolloutId: string, now: Date): Promise<void> {
  const rollout = await ctx.store.rollouts.get(rolloutId);
  if (rollout?.state !== 'running') return;
  let members = await ctx.store.rollouts.devices(rolloutId);

  const acknowledged = engineState(rollout).acknowledgedFailures ?? 0;
  const failed = members.filter((m) => failedStates.includes(m.state)).length;
  const budget = failureBudget(rollout.plan, members.filter((m) => m.state !== 'skipped').length);
  if (failed - acknowledged > budget)
    return trip(ctx, rollout, `${failed} device(s) failed, over the budget of ${budget}`);

  const shadow = await shadowPhase(ctx, rollout, members, now);
  if (shadow === 'wait') return;
  if (shadow !== 'continue') return trip(ctx, rollout, shadow.trip);

  if (await assignPending(ctx, rollout, members, now.getTime()))
    members = await ctx.store.rollouts.devices(rolloutId);
  const batch = members.filter((m) => m.batch === rollout.currentBatch);
  if (!batch.every((m) => isTerminal(m.state))) return;

  const counted = batch.filter((m) => m.state !== 'skipped' && m.state !== 'cancelled');
  const successPct =
    counted.length === 0 ? 100 : (100 * counted.filter((m) => m.state === 'active').length) / counted.length;
  if (successPct < rollout.plan.successThresholdPct) {
    return trip(
      ctx,
      rollout,
      `batch ${rollout.currentBatch + 1} reached ${successPct.toFixed(0)}% active, below ${rollout.plan.successThresholdPct}%`,
    );
  }

  const soakStarted = rollout.soakStartedAt ?? now.toISOString();
  if (!rollout.soakStartedAt) {
    await ctx.store.rollouts.setSoakStarted(rolloutId, soakStarted);
    if (rollout.plan.soakSeconds > 0)
      await record(
        ctx,
        rolloutId,
        'soaking',
        null,
        `batch ${rollout.currentBatch + 1} installed; soaking ${rollout.plan.soakSeconds} s`,
      );
  }
  const gates = await evaluateGates(ctx, rollout, members, now);
  await saveEngineState(ctx, rollout, { readings: gates.readings, evaluatedAt: gates.evaluatedAt });
  if (gates.failed) return trip(ctx, rollout, `gate ${gates.failed.gate} tripped: ${gates.failed.detail}`);
  if (now.getTime() - Date.parse(soakStarted) < rollout.plan.soakSeconds * 1000) return;

  const lastBatch = Math.max(...members.map((m) => m.batch));
  if (rollout.currentBatch < lastBatch) {
    const next = rollout.currentBatch + 1;
    if (rollout.plan.requireApproval && rollout.approvedBatch <= next) {
      if (
        await ctx.store.rollouts.setState(
          rolloutId,
          'awaiting-approval',
          `batch ${next + 1} waits for approval`,
          ['running'],
        )
      ) {
        await record(
          ctx,
          rolloutId,
          'awaiting-approval',
          null,
          `batch ${rollout.currentBatch + 1} passed; batch ${next + 1} waits for approval`,
        );
      }
      return;
    }
    await ctx.store.rollouts.setCurrentBatch(rolloutId, next);
    await record(ctx, rolloutId, 'batch-started', null, `batch ${next + 1} of ${lastBatch + 1} started`);
    return step(ctx, rolloutId, now);
  }
  const active = members.filter((m) => m.state === 'active').length;
  const skipped = members.filter((m) => m.state === 'skipped').length;
  const notes = [
    `${active} active`,
    failed ? `${failed} failed or timed out` : '',
    skipped ? `${skipped} skipped (no compatible artifact)` : '',
  ]
    .filter(Boolean)
    .join(', ');
  if (await ctx.store.rollouts.setState(rolloutId, 'completed', notes, ['running']))
    await record(ctx, rolloutId, 'completed', null, notes);
}

/** Fold a device's reported deployment states into the rollouts it belongs to. */
export async function onDeviceReported(
  ctx: HubContext,
  deviceId: string,
  reported: ReportedState,
  options: { awaitStep?: boolean } = {},
): Promise<void> {
  const memberships = (await ctx.store.rollouts.forDevice(deviceId)).filter(
    (m) => !isTerminal(m.state) && m.state !== 'pending',
  );
  for (const m of memberships) {
    const rollout = await ctx.store.rollouts.get(m.rolloutId);
    const next = rollout && stateFromReport(m, reported, rollout);
    if (!next || (next.state === m.state && next.reason === m.reason)) continue;
    await ctx.store.rollouts.updateDevice(m.rolloutId, deviceId, next);
    if (next.state === 'failed' || next.state === 'rolled-back') {
      await ctx.store.events.add({
        kind: `rollout.device-${next.state}`,
        subject: deviceId,
        actor: `device:${deviceId}`,
        message: next.reason ?? next.state,
        data: { rolloutId: m.rolloutId },
      });
    }
    // The device's new state is stored; the step it triggers may wait behind another. The broker
    // path does not wait for it: messages from an external broker are taken one at a time, and
    // chunk requests of devices fetching over MQTT must not queue behind rollout steps.
    const stepped = advance(ctx, m.rolloutId);
    if (options.awaitStep === false)
      stepped.catch((error: unknown) =>
        ctx.logger.error({ err: error, rolloutId: m.rolloutId }, 'rollout step failed'),
      );
    else await stepped;
    ctx.live.emit({ type: 'rollout', rolloutId: m.rolloutId });
  }
}

function stateFromReport(
  m: RolloutDeviceRecord,
  reported: ReportedState,
  rollout: RolloutRecord,
): { state: RolloutDeviceState; reason: string | null } | undefined {
  const slot = reported.models[rollout.model];
  if (!slot) return undefined;
  const d = slot.deployment;
  if (d && d.deploymentId === m.rolloutId) {
    return {
      state: d.state === 'pending' ? 'assigned' : d.state,
      reason: d.error ? `${d.error.code}: ${d.error.message}` : m.reason,
    };
  }
  if (
    slot.active?.name === rollout.model &&
    slot.active.version === rollout.version &&
    (!m.artifactSha256 || slot.active.sha256 === m.artifactSha256)
  ) {
    return { state: 'active', reason: m.reason };
  }
  return undefined;
}

/** Periodic work: time out devices that never answered, then step every live rollout. */
export async function tickRollouts(ctx: HubContext, now = new Date()): Promise<void> {
  for (const rollout of await ctx.store.rollouts.list({ states: ['running'] })) {
    for (const m of await ctx.store.rollouts.devices(rollout.id)) {
      if (isTerminal(m.state) || m.state === 'pending' || !m.assignedAt) continue;
      if (now.getTime() - Date.parse(m.assignedAt) > rollout.plan.deviceTimeoutSeconds * 1000) {
        await ctx.store.rollouts.updateDevice(rollout.id, m.deviceId, {
          state: 'timed-out',
          reason: `no answer within ${rollout.plan.deviceTimeoutSeconds} s (last state: ${m.state})`,
        });
        await ctx.store.events.add({
          kind: 'rollout.device-timed-out',
          subject: m.deviceId,
          actor: null,
          message: `did not finish ${rollout.model}@${rollout.version} in time`,
          data: { rolloutId: rollout.id },
        });
      } else if (await resendAssignment(ctx, rollout, m, now.getTime())) {
        ctx.logger.info({ rolloutId: rollout.id, deviceId: m.deviceId }, 'sent desired state again');
      }
    }
    await advance(ctx, rollout.id, now);
  }
}

/** Operator actions: pause, resume, approve, cancel, roll back. Each records who and why. */
export async function actOnRollout(
  ctx: HubContext,
  id: string,
  action: 'pause' | 'resume' | 'approve' | 'cancel' | 'rollback',
  actor: string | null,
  reason?: string,
): Promise<RolloutRecord> {
  const rollout = await ctx.store.rollouts.get(id);
  if (!rollout) throw notFound(`rollout ${id}`);
  const why = reason ? `: ${reason}` : '';
  const move = async (to: RolloutState, from: RolloutState[], message: string) => {
    if (!(await ctx.store.rollouts.setState(id, to, `${message} by ${actor ?? 'unknown'}${why}`, from))) {
      throw new HubError('CONFLICT', `rollout ${id} is ${rollout.state}; cannot ${action} it`);
    }
    await record(ctx, id, action === 'approve' ? 'approved' : to, actor, `${message}${why}`);
  };
  switch (action) {
    case 'pause':
      await move('paused', ['running', 'awaiting-approval'], 'paused');
      break;
    case 'resume':
    case 'approve': {
      // Resuming acknowledges the failures seen so far; the budget applies to new ones.
      const failed = (await ctx.store.rollouts.devices(id)).filter((m) =>
        failedStates.includes(m.state),
      ).length;
      await saveEngineState(ctx, rollout, { acknowledgedFailures: failed });
      if (rollout.state === 'awaiting-approval' || action === 'approve')
        await ctx.store.rollouts.approveThrough(id, rollout.currentBatch + 1);
      await move(
        'running',
        action === 'approve' ? ['awaiting-approval'] : ['paused', 'awaiting-approval'],
        action === 'approve' ? 'next batch approved' : 'resumed',
      );
      await advance(ctx, id);
      break;
    }
    case 'cancel':
      await move('cancelled', ['running', 'paused', 'awaiting-approval'], 'cancelled');
      await stopShadow(ctx, rollout);
      for (const m of await ctx.store.rollouts.devices(id)) {
        if (m.state === 'pending')
          await ctx.store.rollouts.updateDevice(id, m.deviceId, {
            state: 'cancelled',
            reason: 'rollout cancelled',
          });
      }
      break;
    case 'rollback': {
      await move(
        'rolled-back',
        ['running', 'paused', 'awaiting-approval', 'completed', 'failed'],
        'rolled back',
      );
      await stopShadow(ctx, rollout);
      const n = await rollbackDevices(ctx, rollout, `rolled back by ${actor ?? 'unknown'}${why}`);
      await record(ctx, id, 'rollback-applied', actor, `${n} device(s) returned to their previous version`);
      break;
    }
  }
  return (await ctx.store.rollouts.get(id)) as RolloutRecord;
}
