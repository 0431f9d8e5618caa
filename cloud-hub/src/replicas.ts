/**
 * Replica liveness for scale-out. Each replica renews a `replica:<id>` lease; a lease left to expire
 * means that replica died. One survivor (whoever takes `adopt:<id>`) then adopts its MQTT session so
 * the device traffic the broker queued for it is stored now, not when (or if) it comes back.
 */
import type { HubContext } from './context.ts';

const HEARTBEAT_MS = 3000;
/**
 * Long enough to ride out a GC pause, a slow database or a starved CPU, short enough to keep the
 * backlog small. Declaring a live replica dead is the costly mistake: adopting its session kicks its
 * connection (same client id). At 15 s that happened on a loaded 2-core CI machine.
 */
const DEAD_AFTER_MS = 30_000;

export function watchReplicas(ctx: HubContext, clientIdOf: (replicaId: string) => string): () => void {
  const adopt = ctx.broker.adoptSession?.bind(ctx.broker);
  const { leases } = ctx.store;
  const self = `replica:${ctx.replicaId}`;
  let adopting = false;
  const beat = async () => {
    try {
      // Renewed on every beat, even while this replica is busy adopting another: a long adoption
      // (draining thousands of queued messages) once let this replica's own lease lapse, and a
      // third replica adopted it while it was alive, kicking its connection.
      await leases.acquire(self, ctx.replicaId, DEAD_AFTER_MS);
    } catch (error) {
      ctx.logger.error({ err: error }, 'replica heartbeat failed');
      return;
    }
    if (!adopt || adopting) return;
    adopting = true;
    try {
      for (const name of await leases.expired('replica:')) {
        const dead = name.slice('replica:'.length);
        if (dead === ctx.replicaId) continue;
        if (!(await leases.acquire(`adopt:${dead}`, ctx.replicaId, 120_000))) continue;
        try {
          const handled = await adopt(clientIdOf(dead));
          ctx.logger.warn({ replica: dead, handled }, 'adopted the MQTT session of a replica that stopped');
          await leases.forgetIfExpired(name);
        } finally {
          await leases.release(`adopt:${dead}`, ctx.replicaId);
        }
      }
    } catch (error) {
      ctx.logger.error({ err: error }, 'adopting a stopped replica failed');
    } finally {
      adopting = false;
    }
  };
  void beat();
  const timer = setInterval(() => void beat(), HEARTBEAT_MS);
  timer.unref();
  return () => clearInterval(timer);
}
