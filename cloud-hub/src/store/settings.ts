/** Small hub-wide settings shared by every replica (the hub's signing key, the broker bridge secret). */
import type { Kysely } from 'kysely';
import type { Database } from './schema.ts';

export function settingsRepo(db: Kysely<Database>) {
  return {
    async get(key: string): Promise<string | undefined> {
      const row = await db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst();
      return row?.value;
    },
    async set(key: string, value: string): Promise<void> {
      await db
        .insertInto('settings')
        .values({ key, value })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
        .execute();
    },
    /** Store `value` unless the key exists; returns whichever value won (first writer wins across replicas). */
    async getOrCreate(key: string, create: () => Promise<string> | string): Promise<string> {
      const existing = await this.get(key);
      if (existing !== undefined) return existing;
      await db
        .insertInto('settings')
        .values({ key, value: await create() })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      const value = await this.get(key);
      if (value === undefined) throw new Error(`setting ${key} could not be stored`);
      return value;
    },
  };
}
