/** Rollouts and the per-device progress of each. */
import type { DesiredModel, TargetSelector } from '@edgefleet/protocol';
import type { Kysely } from 'kysely';
import { fromJson, nowIso, toJson } from './json.ts';
import type { Database } from './schema.ts';

export type RolloutState =
  | 'running'
  | 'paused'
  | 'awaiting-approval'
  | 'completed'
  | 'failed'
  | 'cancelled'
  | 'superseded'
  | 'rolled-back';
export const terminalRolloutStates: readonly RolloutState[] = [
  'completed',
  'failed',
  'cancelled',
  'superseded',
  'rolled-back',
];

/** Device states in a rollout: the hub's own (pending, assigned, skipped, timed-out, cancelled) plus the agent's. */
export type RolloutDeviceState =
  | 'pending'
  | 'assigned'
  | 'skipped'
  | 'timed-out'
  | 'cancelled'
  | 'downloading'
  | 'verifying'
  | 'staged'
  | 'loading'
  | 'smoke-testing'
  | 'active'
  | 'failed'
  | 'rolled-back';
export const terminalDeviceStates: readonly RolloutDeviceState[] = [
  'skipped',
  'timed-out',
  'cancelled',
  'active',
  'failed',
  'rolled-back',
];

export interface RolloutGates {
  /** Stop when the new version's error rate exceeds the previous one's by this factor (and by ≥1 point). */
  errorRateRatio?: number;
  /** Stop when the new version's error rate exceeds this percentage. */
  maxErrorRatePct?: number;
  /** Stop when latency p95 exceeds the previous version's on the same devices by this factor. */
  latencyP95Ratio?: number;
  /** Stop when the model version's drift status reaches this level. */
  drift?: 'warning' | 'drift';
  /** Stop when shadow agreement with the active model falls below this percentage. */
  minShadowAgreementPct?: number;
}

export interface RolloutPlan {
  /** Batch sizes: absolute counts or percentages of the target set, cumulative ("1", "10%", "100%"). */
  batches: string[];
  successThresholdPct: number;
  /** Failures (failed, reverted, timed out) tolerated: a count or a percentage of targeted devices. */
  maxFailures: string;
  /** What to do when failures or a gate trip: pause for a human, or roll the fleet back. */
  onFailure: 'pause' | 'rollback';
  soakSeconds: number;
  /** Before the first batch switches, run the candidate in shadow mode on its devices this long. */
  shadowSeconds?: number;
  deviceTimeoutSeconds: number;
  /** At most this many devices start updating per minute (0: no limit). */
  maxPerMinute: number;
  /** Per site (tag `site:NAME`), at most this many devices updating at once (0: no limit). */
  maxConcurrentPerSite: number;
  /** Wait for a manual approve before each batch after the first. */
  requireApproval: boolean;
  gates: RolloutGates;
}

export interface RolloutRecord {
  id: string;
  model: string;
  version: string;
  selector: TargetSelector;
  plan: RolloutPlan;
  state: RolloutState;
  stateReason: string | null;
  currentBatch: number;
  createdAt: string;
  createdBy: string | null;
  updatedAt: string;
  finishedAt: string | null;
  soakStartedAt: string | null;
  /** The latest gate readings, for the API and dashboard. */
  gates: unknown;
  /** Batches below this index may start (manual approvals). */
  approvedBatch: number;
}

export interface RolloutDeviceRecord {
  rolloutId: string;
  deviceId: string;
  batch: number;
  state: RolloutDeviceState;
  artifactSha256: string | null;
  reason: string | null;
  assignedAt: string | null;
  updatedAt: string;
  /** What the device ran in this slot before: where a rollback returns it (null: nothing). */
  previous: DesiredModel | null;
  activeAt: string | null;
}

const toRollout = (r: Database['rollouts']): RolloutRecord => ({
  id: r.id,
  model: r.model,
  version: r.version,
  selector: fromJson<TargetSelector>(r.selector, { all: true }),
  plan: fromJson<RolloutPlan>(r.plan, {} as RolloutPlan),
  state: r.state as RolloutState,
  stateReason: r.state_reason,
  currentBatch: r.current_batch,
  createdAt: r.created_at,
  createdBy: r.created_by,
  updatedAt: r.updated_at,
  finishedAt: r.finished_at,
  soakStartedAt: r.soak_started_at,
  gates: fromJson<unknown>(r.gates, null),
  approvedBatch: r.approved_batch,
});

const toRolloutDevice = (r: Database['rollout_devices']): RolloutDeviceRecord => ({
  rolloutId: r.rollout_id,
  deviceId: r.device_id,
  batch: r.batch,
  state: r.state as RolloutDeviceState,
  artifactSha256: r.artifact_sha256,
  reason: r.reason,
  assignedAt: r.assigned_at,
  updatedAt: r.updated_at,
  previous: fromJson<DesiredModel | null>(r.previous, null),
  activeAt: r.active_at,
});

export function rolloutsRepo(db: Kysely<Database>) {
  return {
    async insert(r: {
      id: string;
      model: string;
      version: string;
      selector: TargetSelector;
      plan: RolloutPlan;
      createdBy: string | null;
      devices: { deviceId: string; batch: number }[];
    }) {
      const now = nowIso();
      await db.transaction().execute(async (trx) => {
        await trx
          .insertInto('rollouts')
          .values({
            id: r.id,
            model: r.model,
            version: r.version,
            selector: toJson(r.selector),
            plan: toJson(r.plan),
            state: 'running',
            state_reason: null,
            current_batch: 0,
            created_at: now,
            created_by: r.createdBy,
            updated_at: now,
            finished_at: null,
            soak_started_at: null,
            gates: null,
            approved_batch: 1,
          })
          .execute();
        for (let i = 0; i < r.devices.length; i += 400) {
          await trx
            .insertInto('rollout_devices')
            .values(
              r.devices.slice(i, i + 400).map((d) => ({
                rollout_id: r.id,
                device_id: d.deviceId,
                batch: d.batch,
                state: 'pending',
                artifact_sha256: null,
                reason: null,
                assigned_at: null,
                updated_at: now,
                previous: null,
                active_at: null,
              })),
            )
            .execute();
        }
      });
    },
    async get(id: string): Promise<RolloutRecord | undefined> {
      const row = await db.selectFrom('rollouts').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toRollout(row);
    },
    async list(options: { states?: RolloutState[]; model?: string } = {}): Promise<RolloutRecord[]> {
      let q = db.selectFrom('rollouts').selectAll().orderBy('created_at', 'desc');
      if (options.states) q = q.where('state', 'in', options.states);
      if (options.model) q = q.where('model', '=', options.model);
      return (await q.execute()).map(toRollout);
    },
    async devices(rolloutId: string): Promise<RolloutDeviceRecord[]> {
      const rows = await db
        .selectFrom('rollout_devices')
        .selectAll()
        .where('rollout_id', '=', rolloutId)
        .orderBy('batch')
        .orderBy('device_id')
        .execute();
      return rows.map(toRolloutDevice);
    },
    async forDevice(deviceId: string): Promise<RolloutDeviceRecord[]> {
      const rows = await db
        .selectFrom('rollout_devices')
        .selectAll()
        .where('device_id', '=', deviceId)
        .execute();
      return rows.map(toRolloutDevice);
    },
    /** Move a rollout to a new state (only from `from`, when given); false if it was not in `from`. */
    async setState(
      id: string,
      state: RolloutState,
      reason: string | null,
      from?: readonly RolloutState[],
    ): Promise<boolean> {
      const now = nowIso();
      let q = db
        .updateTable('rollouts')
        .set({
          state,
          state_reason: reason,
          updated_at: now,
          finished_at: terminalRolloutStates.includes(state) ? now : null,
        })
        .where('id', '=', id);
      if (from) q = q.where('state', 'in', [...from]);
      return Number((await q.executeTakeFirst()).numUpdatedRows) > 0;
    },
    async setCurrentBatch(id: string, batch: number): Promise<void> {
      await db
        .updateTable('rollouts')
        .set({ current_batch: batch, soak_started_at: null, updated_at: nowIso() })
        .where('id', '=', id)
        .execute();
    },
    async setSoakStarted(id: string, at: string | null): Promise<void> {
      await db
        .updateTable('rollouts')
        .set({ soak_started_at: at, updated_at: nowIso() })
        .where('id', '=', id)
        .execute();
    },
    /** Store the latest gate readings (plus the engine's acknowledged-failure count). */
    async setGates(id: string, gates: unknown): Promise<void> {
      await db
        .updateTable('rollouts')
        .set({ gates: toJson(gates) })
        .where('id', '=', id)
        .execute();
    },
    /** Allow batches up to and including `batch` to start. */
    async approveThrough(id: string, batch: number): Promise<void> {
      await db
        .updateTable('rollouts')
        .set({ approved_batch: batch + 1, updated_at: nowIso() })
        .where('id', '=', id)
        .execute();
    },
    async updateDevice(
      rolloutId: string,
      deviceId: string,
      patch: {
        state: RolloutDeviceState;
        reason?: string | null;
        artifactSha256?: string | null;
        assigned?: boolean;
        previous?: DesiredModel | null;
      },
    ): Promise<void> {
      const now = nowIso();
      const set: Partial<Database['rollout_devices']> = { state: patch.state, updated_at: now };
      if (patch.reason !== undefined) set.reason = patch.reason;
      if (patch.artifactSha256 !== undefined) set.artifact_sha256 = patch.artifactSha256;
      if (patch.assigned) set.assigned_at = now;
      if (patch.previous !== undefined) set.previous = toJson(patch.previous);
      if (patch.state === 'active') set.active_at = now;
      await db
        .updateTable('rollout_devices')
        .set(set)
        .where('rollout_id', '=', rolloutId)
        .where('device_id', '=', deviceId)
        .execute();
    },
  };
}
