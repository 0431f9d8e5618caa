/** API tokens and device enrollment tokens. Only sha256 hashes of secrets are stored. */
import type { Kysely } from 'kysely';
import { fromJson, nowIso, toJson } from './json.ts';
import type { Database } from './schema.ts';

export interface ApiTokenRecord {
  id: string;
  name: string;
  role: string;
  createdAt: string;
  createdBy: string | null;
  revokedAt: string | null;
}

export interface EnrollmentTokenRecord {
  id: string;
  usesLeft: number;
  tags: string[];
  expiresAt: string;
  createdAt: string;
  revokedAt: string | null;
}

export function tokensRepo(db: Kysely<Database>) {
  const toApiToken = (r: Database['api_tokens']): ApiTokenRecord => ({
    id: r.id,
    name: r.name,
    role: r.role,
    createdAt: r.created_at,
    createdBy: r.created_by,
    revokedAt: r.revoked_at,
  });
  const toEnrollment = (r: Database['enrollment_tokens']): EnrollmentTokenRecord => ({
    id: r.id,
    usesLeft: r.uses_left,
    tags: fromJson<string[]>(r.tags, []),
    expiresAt: r.expires_at,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  });
  return {
    async insertApiToken(t: {
      id: string;
      name: string;
      role: string;
      hash: string;
      createdBy: string | null;
    }) {
      await db
        .insertInto('api_tokens')
        .values({
          id: t.id,
          name: t.name,
          role: t.role,
          token_hash: t.hash,
          created_at: nowIso(),
          created_by: t.createdBy,
          revoked_at: null,
        })
        // The same token given to several replicas starting together: the first insert wins.
        .onConflict((oc) => oc.column('token_hash').doNothing())
        .execute();
    },
    async findActiveApiToken(hash: string): Promise<ApiTokenRecord | undefined> {
      const row = await db
        .selectFrom('api_tokens')
        .selectAll()
        .where('token_hash', '=', hash)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return row && toApiToken(row);
    },
    async listApiTokens(): Promise<ApiTokenRecord[]> {
      const rows = await db.selectFrom('api_tokens').selectAll().orderBy('created_at').execute();
      return rows.map(toApiToken);
    },
    async countActiveAdmins(): Promise<number> {
      const row = await db
        .selectFrom('api_tokens')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('role', '=', 'admin')
        .where('revoked_at', 'is', null)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    /** Returns false when no active token has that id. */
    async revokeApiToken(id: string): Promise<boolean> {
      const result = await db
        .updateTable('api_tokens')
        .set({ revoked_at: nowIso() })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
    async insertEnrollmentToken(t: {
      id: string;
      hash: string;
      uses: number;
      tags: string[];
      expiresAt: string;
      createdBy: string | null;
    }) {
      await db
        .insertInto('enrollment_tokens')
        .values({
          id: t.id,
          token_hash: t.hash,
          uses_left: t.uses,
          tags: toJson(t.tags),
          expires_at: t.expiresAt,
          created_at: nowIso(),
          created_by: t.createdBy,
          revoked_at: null,
        })
        .execute();
    },
    /** Atomically use one enrollment of a valid token; undefined when it is unknown, used up, expired or revoked. */
    async consumeEnrollmentToken(hash: string): Promise<EnrollmentTokenRecord | undefined> {
      const row = await db
        .updateTable('enrollment_tokens')
        .set((eb) => ({ uses_left: eb('uses_left', '-', 1) }))
        .where('token_hash', '=', hash)
        .where('uses_left', '>', 0)
        .where('expires_at', '>', nowIso())
        .where('revoked_at', 'is', null)
        .returningAll()
        .executeTakeFirst();
      return row && toEnrollment(row);
    },
    async listEnrollmentTokens(): Promise<EnrollmentTokenRecord[]> {
      const rows = await db.selectFrom('enrollment_tokens').selectAll().orderBy('created_at').execute();
      return rows.map(toEnrollment);
    },
    async revokeEnrollmentToken(id: string): Promise<boolean> {
      const result = await db
        .updateTable('enrollment_tokens')
        .set({ revoked_at: nowIso() })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) > 0;
    },
  };
}
