/** The engine's own notes on a rollout, kept beside the gate readings (the `gates` column). */
import type { HubContext } from '../context.ts';
import type { RolloutRecord } from '../store/rollouts.ts';

export interface EngineState {
  /** Failures an operator acknowledged by resuming: the budget applies to new ones. */
  acknowledgedFailures?: number;
  shadow?: { startedAt: string; devices: string[]; done: boolean };
  readings?: unknown[];
  evaluatedAt?: string;
}

export function engineState(rollout: RolloutRecord): EngineState {
  return (rollout.gates as EngineState | null) ?? {};
}

export async function saveEngineState(
  ctx: HubContext,
  rollout: RolloutRecord,
  patch: Partial<EngineState>,
): Promise<void> {
  const next = { ...engineState(rollout), ...patch };
  rollout.gates = next;
  await ctx.store.rollouts.setGates(rollout.id, next);
}
