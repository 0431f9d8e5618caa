/** Models, their versions (signed manifests) and the content-addressed files each version names. */
import type { Kysely } from 'kysely';
import { nowIso } from './json.ts';
import type { Database } from './schema.ts';

export interface VersionFile {
  file: string;
  sha256: string;
  sizeBytes: number;
  kind: 'artifact' | 'smoke-test' | 'reference-profile';
}

export interface ModelVersionRecord {
  model: string;
  version: string;
  createdAt: string;
  createdBy: string | null;
  manifestText: string;
  manifestSha256: string;
  signatureText: string;
  signedBy: string;
  sourceFormat: string;
  files: VersionFile[];
}

export interface NewModelVersion extends Omit<ModelVersionRecord, 'createdAt'> {}

export function modelsRepo(db: Kysely<Database>) {
  return {
    /** Insert a version and its files; false when that version already exists. */
    async insertVersion(v: NewModelVersion): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        await trx
          .insertInto('models')
          .values({ name: v.model, created_at: nowIso() })
          .onConflict((oc) => oc.column('name').doNothing())
          .execute();
        const inserted = await trx
          .insertInto('model_versions')
          .values({
            model: v.model,
            version: v.version,
            created_at: nowIso(),
            created_by: v.createdBy,
            manifest: v.manifestText,
            manifest_sha256: v.manifestSha256,
            signature: v.signatureText,
            signed_by: v.signedBy,
            source_format: v.sourceFormat,
          })
          .onConflict((oc) => oc.columns(['model', 'version']).doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) return false;
        if (v.files.length > 0) {
          await trx
            .insertInto('version_files')
            .values(
              v.files.map((f) => ({
                model: v.model,
                version: v.version,
                file: f.file,
                sha256: f.sha256,
                size_bytes: f.sizeBytes,
                kind: f.kind,
              })),
            )
            .execute();
        }
        return true;
      });
    },
    async getVersion(model: string, version: string): Promise<ModelVersionRecord | undefined> {
      const row = await db
        .selectFrom('model_versions')
        .selectAll()
        .where('model', '=', model)
        .where('version', '=', version)
        .executeTakeFirst();
      if (!row) return undefined;
      const files = await db
        .selectFrom('version_files')
        .selectAll()
        .where('model', '=', model)
        .where('version', '=', version)
        .orderBy('file')
        .execute();
      return {
        model: row.model,
        version: row.version,
        createdAt: row.created_at,
        createdBy: row.created_by,
        manifestText: row.manifest,
        manifestSha256: row.manifest_sha256,
        signatureText: row.signature,
        signedBy: row.signed_by,
        sourceFormat: row.source_format,
        files: files.map((f) => ({
          file: f.file,
          sha256: f.sha256,
          sizeBytes: Number(f.size_bytes),
          kind: f.kind as VersionFile['kind'],
        })),
      };
    },
    async listModels(): Promise<
      {
        name: string;
        createdAt: string;
        versions: { version: string; createdAt: string; signedBy: string }[];
      }[]
    > {
      const models = await db.selectFrom('models').selectAll().orderBy('name').execute();
      const versions = await db
        .selectFrom('model_versions')
        .select(['model', 'version', 'created_at', 'signed_by'])
        .orderBy('created_at')
        .execute();
      return models.map((m) => ({
        name: m.name,
        createdAt: m.created_at,
        versions: versions
          .filter((v) => v.model === m.name)
          .map((v) => ({ version: v.version, createdAt: v.created_at, signedBy: v.signed_by })),
      }));
    },
    /** The versions that name a file with this sha256 (empty when the hub does not know it). */
    async versionsWithFile(sha256: string): Promise<{ model: string; version: string; sizeBytes: number }[]> {
      const rows = await db
        .selectFrom('version_files')
        .select(['model', 'version', 'size_bytes'])
        .where('sha256', '=', sha256)
        .execute();
      return rows.map((r) => ({ model: r.model, version: r.version, sizeBytes: Number(r.size_bytes) }));
    },
    async deleteVersion(model: string, version: string): Promise<boolean> {
      return db.transaction().execute(async (trx) => {
        await trx
          .deleteFrom('version_files')
          .where('model', '=', model)
          .where('version', '=', version)
          .execute();
        const r = await trx
          .deleteFrom('model_versions')
          .where('model', '=', model)
          .where('version', '=', version)
          .executeTakeFirst();
        return Number(r.numDeletedRows) > 0;
      });
    },
    /** Files no version references any more (to delete from the artifact store). */
    async isFileReferenced(sha256: string): Promise<boolean> {
      const row = await db
        .selectFrom('version_files')
        .select('sha256')
        .where('sha256', '=', sha256)
        .executeTakeFirst();
      return row !== undefined;
    },
  };
}
