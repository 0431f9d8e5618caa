/**
 * Steps of one rollout, one at a time per hub process. The lease keeps other replicas out, but a
 * replica renews its own lease, so the steps asked for in this process (the POST, the tick, device
 * reports) are queued here.
 */
import type { HubContext } from '../context.ts';

export async function queueStep(ctx: HubContext, rolloutId: string, run: () => Promise<void>): Promise<void> {
  // The lease keeps other replicas out, but a replica renews its own lease, so steps asked for in
  // this process (the POST, the tick, device reports) are queued per rollout: two concurrent steps
  // read the same members and the second re-assigned a device that had meanwhile reported active,
  // which then stayed "assigned" for good. A step that is queued but not started yet reads
  // everything written before it starts, so later callers join it: a burst of 1,000 reports costs
  // a few steps, not 1,000 (each step reads every member).
  const queues = stepQueues.get(ctx) ?? new Map<string, StepQueue>();
  stepQueues.set(ctx, queues);
  const queue = queues.get(rolloutId) ?? { tail: Promise.resolve(), waiting: undefined };
  queues.set(rolloutId, queue);
  if (queue.waiting) return queue.waiting;
  const running = queue.tail.then(() => {
    queue.waiting = undefined; // from here on, callers need the next step
    return run();
  });
  const settled = running.catch(() => undefined);
  queue.waiting = running;
  // A step that hangs must not wedge its rollout: after STEP_PATIENCE_MS the next one may start.
  let patience: NodeJS.Timeout | undefined;
  queue.tail = Promise.race([
    settled,
    new Promise<void>((resolve) => {
      patience = setTimeout(() => {
        ctx.logger.warn({ rolloutId }, `a rollout step is still running after ${STEP_PATIENCE_MS} ms`);
        resolve();
      }, STEP_PATIENCE_MS);
      patience.unref();
    }),
  ]);
  void settled.then(() => clearTimeout(patience));
  const tail = queue.tail;
  try {
    await running;
  } finally {
    if (queue.tail === tail) queues.delete(rolloutId); // nothing queued after this step
  }
}

interface StepQueue {
  tail: Promise<void>;
  waiting: Promise<void> | undefined;
}
const stepQueues = new WeakMap<HubContext, Map<string, StepQueue>>();
const STEP_PATIENCE_MS = 30_000;
