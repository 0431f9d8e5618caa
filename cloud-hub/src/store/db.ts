/**
 * Store drivers: SQLite (embedded default, a file in the data dir) and PostgreSQL (`--db postgres://…`).
 * Each returns the same Kysely handle; queries are written once in the repositories.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { migrateToLatest } from './migrations.ts';
import type { Database } from './schema.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface DatabaseHandle {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Where the data lives, with any password removed (for logs and /healthz). */
  description: string;
  close(): Promise<void>;
}

// int8 (bigint) columns hold byte sizes and counters far below 2^53; read them as numbers.
pg.types.setTypeParser(20, (value) => Number(value));

/** Open SQLite at `path` (WAL mode: readers never block the ingest writer). */
export function openSqlite(path: string): DatabaseHandle {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
  const sqlite = new SqliteDatabase(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { db, dialect: 'sqlite', description: `sqlite:${path}`, close: () => db.destroy() };
}

/** Called when PostgreSQL drops an idle pooled connection (server restart, admin termination). */
export type ConnectionErrorHandler = (error: Error) => void;

/** Open PostgreSQL at `url`. */
export function openPostgres(
  url: string,
  poolSize = 10,
  onIdleError?: ConnectionErrorHandler,
): DatabaseHandle {
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  // pg emits an idle client's error on the pool, and an unheard 'error' event ends the process: a
  // PostgreSQL restart must cost the hub a reconnect (the pool opens a new client on next use), not
  // its life.
  pool.on('error', (error) => onIdleError?.(error));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const safe = new URL(url);
  safe.password = '';
  return { db, dialect: 'postgres', description: safe.toString(), close: () => db.destroy() };
}

/** Open the store named by `--db` (a postgres:// URL, or a SQLite path), migrated to the latest schema. */
export async function openDatabase(
  url: string,
  onIdleError?: ConnectionErrorHandler,
): Promise<DatabaseHandle> {
  const handle = /^postgres(ql)?:\/\//.test(url)
    ? openPostgres(url, 10, onIdleError)
    : openSqlite(url.replace(/^sqlite:/, ''));
  try {
    await migrateToLatest(handle.db as never, handle.dialect);
  } catch (error) {
    await handle.close();
    throw error;
  }
  return handle;
}
