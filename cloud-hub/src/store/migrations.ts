/**
 * Versioned migrations, applied in order at start and recorded by Kysely's Migrator (in
 * `kysely_migration`, with a lock so concurrent replicas don't race). Never edit a released
 * migration: add the next one.
 */
import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import type { Dialect } from './db.ts';

type AnyDb = Kysely<unknown>;

function migrations(dialect: Dialect): Record<string, Migration> {
  // The only dialect difference we need: an auto-incrementing event id.
  const autoId = dialect === 'postgres' ? sql`bigserial primary key` : sql`integer primary key autoincrement`;
  return {
    '0001_initial': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('api_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('revoked_at', 'text')
          .execute();
        await db.schema
          .createTable('enrollment_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('uses_left', 'integer', (c) => c.notNull())
          .addColumn('tags', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('revoked_at', 'text')
          .execute();
        await db.schema
          .createTable('devices')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('tags', 'text', (c) => c.notNull())
          .addColumn('profile', 'text')
          .addColumn('facts', 'text', (c) => c.notNull())
          .addColumn('secret_hash', 'text', (c) => c.notNull().unique())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('agent_version', 'text')
          .addColumn('status_changed_at', 'text')
          .addColumn('last_seen_at', 'text')
          .addColumn('reported', 'text')
          .addColumn('desired', 'text')
          .addColumn('desired_revision', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('last_telemetry', 'text')
          .addColumn('last_telemetry_seq', 'integer', (c) => c.notNull().defaultTo(-1))
          .addColumn('enrolled_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .execute();
        await db.schema
          .createTable('telemetry')
          .addColumn('device_id', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('ts', 'text', (c) => c.notNull())
          .addColumn('received_at', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('telemetry_pk', ['device_id', 'seq'])
          .execute();
        await db.schema
          .createIndex('telemetry_device_ts')
          .on('telemetry')
          .columns(['device_id', 'ts'])
          .execute();
        await db.schema
          .createTable('stats_windows')
          .addColumn('device_id', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('model', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('start_ts', 'text', (c) => c.notNull())
          .addColumn('end_ts', 'text', (c) => c.notNull())
          .addColumn('received_at', 'text', (c) => c.notNull())
          .addColumn('window', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('stats_windows_pk', ['device_id', 'seq'])
          .execute();
        await db.schema
          .createIndex('stats_windows_model')
          .on('stats_windows')
          .columns(['model', 'version', 'end_ts'])
          .execute();
        await db.schema
          .createTable('models')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('model_versions')
          .addColumn('model', 'text', (c) => c.notNull().references('models.name'))
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('manifest', 'text', (c) => c.notNull())
          .addColumn('manifest_sha256', 'text', (c) => c.notNull())
          .addColumn('signature', 'text', (c) => c.notNull())
          .addColumn('signed_by', 'text', (c) => c.notNull())
          .addColumn('source_format', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('model_versions_pk', ['model', 'version'])
          .execute();
        await db.schema
          .createTable('version_files')
          .addColumn('model', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('file', 'text', (c) => c.notNull())
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('size_bytes', 'bigint', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('version_files_pk', ['model', 'version', 'file'])
          .execute();
        await db.schema.createIndex('version_files_sha').on('version_files').column('sha256').execute();
        await db.schema
          .createTable('publisher_keys')
          .addColumn('key_id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('public_key', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .execute();
        await db.schema
          .createTable('rollouts')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('model', 'text', (c) => c.notNull())
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('selector', 'text', (c) => c.notNull())
          .addColumn('plan', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('state_reason', 'text')
          .addColumn('current_batch', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addColumn('finished_at', 'text')
          .execute();
        await db.schema
          .createTable('rollout_devices')
          .addColumn('rollout_id', 'text', (c) => c.notNull())
          .addColumn('device_id', 'text', (c) => c.notNull())
          .addColumn('batch', 'integer', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('artifact_sha256', 'text')
          .addColumn('reason', 'text')
          .addColumn('assigned_at', 'text')
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('rollout_devices_pk', ['rollout_id', 'device_id'])
          .execute();
        await db.schema
          .createIndex('rollout_devices_device')
          .on('rollout_devices')
          .column('device_id')
          .execute();
        await db.schema
          .createTable('events')
          .addColumn('id', sql`${autoId}` as never)
          .addColumn('ts', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('actor', 'text')
          .addColumn('message', 'text', (c) => c.notNull())
          .addColumn('data', 'text')
          .execute();
        await db.schema.createIndex('events_subject').on('events').columns(['subject', 'id']).execute();
        await db.schema
          .createTable('settings')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('leases')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('holder', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0002_rollout_batches': {
      async up(db: AnyDb) {
        // When the current batch finished installing and began its soak; gate readings for the UI.
        await db.schema.alterTable('rollouts').addColumn('soak_started_at', 'text').execute();
        await db.schema.alterTable('rollouts').addColumn('gates', 'text').execute();
        await db.schema
          .alterTable('rollouts')
          .addColumn('approved_batch', 'integer', (c) => c.notNull().defaultTo(0))
          .execute();
        // What the device ran before this rollout touched it: where a fleet rollback returns it.
        await db.schema.alterTable('rollout_devices').addColumn('previous', 'text').execute();
        await db.schema.alterTable('rollout_devices').addColumn('active_at', 'text').execute();
      },
    },
    '0003_artifact_chunks': {
      async up(db: AnyDb) {
        // Artifacts stored in the database, for replicas that share nothing but PostgreSQL.
        await db.schema
          .createTable('artifact_objects')
          .addColumn('sha256', 'text', (c) => c.primaryKey())
          .addColumn('size_bytes', 'bigint', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('artifact_chunks')
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('idx', 'integer', (c) => c.notNull())
          .addColumn('data', dialect === 'postgres' ? 'bytea' : 'blob', (c) => c.notNull())
          .addPrimaryKeyConstraint('artifact_chunks_pk', ['sha256', 'idx'])
          .execute();
      },
    },
    '0004_agent_releases': {
      async up(db: AnyDb) {
        // Releases of the agent itself (self-update): one archive per version and architecture.
        await db.schema
          .createTable('agent_releases')
          .addColumn('version', 'text', (c) => c.notNull())
          .addColumn('arch', 'text', (c) => c.notNull())
          .addColumn('sha256', 'text', (c) => c.notNull())
          .addColumn('size_bytes', 'bigint', (c) => c.notNull())
          .addColumn('manifest_text', 'text', (c) => c.notNull())
          .addColumn('signature_text', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('created_by', 'text')
          .addPrimaryKeyConstraint('agent_releases_pk', ['version', 'arch'])
          .execute();
      },
    },
  };
}

class InCodeMigrations implements MigrationProvider {
  constructor(private readonly dialect: Dialect) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return migrations(this.dialect);
  }
}

/** Bring the schema up to date; returns the names of migrations applied now. */
export async function migrateToLatest(db: AnyDb, dialect: Dialect): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new InCodeMigrations(dialect) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
