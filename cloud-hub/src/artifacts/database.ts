/**
 * Artifacts kept in the hub's database (PostgreSQL, or SQLite for tests), in 1 MB chunks, so hub
 * replicas on different machines share them with nothing but the database. Range reads fetch
 * only the chunks they touch.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import { HubError } from '../errors.ts';
import type { Database } from '../store/schema.ts';
import type { ArtifactStore, ByteRange } from './artifact-store.ts';

const CHUNK = 1024 * 1024;

export function createDatabaseArtifactStore(db: Kysely<Database>, description: string): ArtifactStore {
  return {
    description: `database:${description}`,
    async put(bytes, expectedSha256) {
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if (expectedSha256 !== undefined && expectedSha256 !== sha256) {
        throw new HubError(
          'BUNDLE_HASH_MISMATCH',
          `artifact bytes hash to ${sha256}, expected ${expectedSha256}`,
        );
      }
      const created = await db.transaction().execute(async (trx) => {
        const inserted = await trx
          .insertInto('artifact_objects')
          .values({ sha256, size_bytes: bytes.byteLength, created_at: new Date().toISOString() })
          .onConflict((oc) => oc.column('sha256').doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
        for (let idx = 0; idx * CHUNK < bytes.byteLength || idx === 0; idx++) {
          await trx
            .insertInto('artifact_chunks')
            .values({ sha256, idx, data: bytes.subarray(idx * CHUNK, (idx + 1) * CHUNK) })
            .execute();
          if (bytes.byteLength === 0) break;
        }
        return true;
      });
      return { sha256, sizeBytes: bytes.byteLength, created };
    },
    async stat(sha256) {
      const row = await db
        .selectFrom('artifact_objects')
        .select('size_bytes')
        .where('sha256', '=', sha256)
        .executeTakeFirst();
      return row ? { sizeBytes: Number(row.size_bytes) } : undefined;
    },
    async read(sha256: string, range?: ByteRange): Promise<Readable> {
      const size = (await this.stat(sha256))?.sizeBytes ?? 0;
      const start = range?.start ?? 0;
      const end = range?.end ?? size - 1;
      async function* chunks() {
        for (let idx = Math.floor(start / CHUNK); idx * CHUNK <= end; idx++) {
          const row = await db
            .selectFrom('artifact_chunks')
            .select('data')
            .where('sha256', '=', sha256)
            .where('idx', '=', idx)
            .executeTakeFirst();
          if (!row) return;
          const data = Buffer.from(row.data);
          const from = Math.max(0, start - idx * CHUNK);
          const to = Math.min(data.byteLength, end - idx * CHUNK + 1);
          yield data.subarray(from, to);
        }
      }
      return Readable.from(chunks());
    },
    async delete(sha256) {
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom('artifact_chunks').where('sha256', '=', sha256).execute();
        await trx.deleteFrom('artifact_objects').where('sha256', '=', sha256).execute();
      });
    },
  };
}
