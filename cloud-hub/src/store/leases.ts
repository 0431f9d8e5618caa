/**
 * Leases: who may do a piece of shared work right now (the periodic rollout tick, one rollout's
 * step). A lease is a row with a holder and an expiry; taking it is one conditional write, so it
 * works the same on SQLite and PostgreSQL, and a replica that dies loses its leases when they expire.
 */
import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

export function leasesRepo(db: Kysely<Database>) {
  return {
    /** Take or renew `name` for `holder` until now + ttl; true when this holder has it. */
    async acquire(name: string, holder: string, ttlMs: number, now = new Date()): Promise<boolean> {
      const expires = new Date(now.getTime() + ttlMs).toISOString();
      const renewed = await db
        .updateTable('leases')
        .set({ holder, expires_at: expires })
        .where('name', '=', name)
        .where((eb) => eb.or([eb('holder', '=', holder), eb('expires_at', '<', now.toISOString())]))
        .executeTakeFirst();
      if (Number(renewed.numUpdatedRows) > 0) return true;
      const inserted = await db
        .insertInto('leases')
        .values({ name, holder, expires_at: expires })
        .onConflict((oc) => oc.column('name').doNothing())
        .executeTakeFirst();
      return Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0;
    },
    async release(name: string, holder: string): Promise<void> {
      await db.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).execute();
    },
    /** Names under `prefix` whose holder stopped renewing them (e.g. replicas that died). */
    async expired(prefix: string, now = new Date()): Promise<string[]> {
      const rows = await db
        .selectFrom('leases')
        .select('name')
        .where('name', 'like', `${prefix}%`)
        .where('expires_at', '<', now.toISOString())
        .execute();
      return rows.map((r) => r.name);
    },
    /** Forget a lease only while it is still expired (its holder may have come back meanwhile). */
    async forgetIfExpired(name: string, now = new Date()): Promise<void> {
      await db
        .deleteFrom('leases')
        .where('name', '=', name)
        .where('expires_at', '<', now.toISOString())
        .execute();
    },
    async holder(name: string, now = new Date()): Promise<string | undefined> {
      const row = await db
        .selectFrom('leases')
        .select(['holder', 'expires_at'])
        .where('name', '=', name)
        .executeTakeFirst();
      return row && row.expires_at > now.toISOString() ? row.holder : undefined;
    },
  };
}
