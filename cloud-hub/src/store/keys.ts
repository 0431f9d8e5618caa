/** Publisher keys whose signatures the hub accepts on uploaded bundles (agents pin them at enrollment). */
import type { TrustedKey } from '@edgefleet/protocol';
import type { Kysely } from 'kysely';
import { nowIso } from './json.ts';
import type { Database } from './schema.ts';

export interface PublisherKeyRecord extends TrustedKey {
  name: string;
  createdAt: string;
  revokedAt: string | null;
}

export function keysRepo(db: Kysely<Database>) {
  return {
    /** False when the key is already registered. */
    async insert(k: { keyId: string; publicKey: string; name: string }): Promise<boolean> {
      const r = await db
        .insertInto('publisher_keys')
        .values({
          key_id: k.keyId,
          public_key: k.publicKey,
          name: k.name,
          created_at: nowIso(),
          revoked_at: null,
        })
        .onConflict((oc) => oc.column('key_id').doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
    },
    async list(): Promise<PublisherKeyRecord[]> {
      const rows = await db.selectFrom('publisher_keys').selectAll().orderBy('created_at').execute();
      return rows.map((r) => ({
        keyId: r.key_id,
        publicKey: r.public_key,
        name: r.name,
        createdAt: r.created_at,
        revokedAt: r.revoked_at,
      }));
    },
    async active(): Promise<TrustedKey[]> {
      return (await this.list())
        .filter((k) => k.revokedAt === null)
        .map((k) => ({ keyId: k.keyId, publicKey: k.publicKey }));
    },
    async revoke(keyId: string): Promise<boolean> {
      const r = await db
        .updateTable('publisher_keys')
        .set({ revoked_at: nowIso() })
        .where('key_id', '=', keyId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
  };
}
