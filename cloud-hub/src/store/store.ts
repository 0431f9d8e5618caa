/** The hub's store: one object of repositories over SQLite or PostgreSQL. */
import type { Kysely } from 'kysely';
import { agentReleasesRepo } from './agent-releases.ts';
import { type ConnectionErrorHandler, type DatabaseHandle, type Dialect, openDatabase } from './db.ts';
import { devicesRepo } from './devices.ts';
import { eventsRepo } from './events.ts';
import { keysRepo } from './keys.ts';
import { leasesRepo } from './leases.ts';
import { modelsRepo } from './models.ts';
import { rolloutsRepo } from './rollouts.ts';
import type { Database } from './schema.ts';
import { settingsRepo } from './settings.ts';
import { statsRepo } from './stats.ts';
import { tokensRepo } from './tokens.ts';

function repositories(db: Kysely<Database>, dialect: Dialect) {
  return {
    tokens: tokensRepo(db),
    devices: devicesRepo(db, dialect),
    models: modelsRepo(db),
    keys: keysRepo(db),
    rollouts: rolloutsRepo(db),
    events: eventsRepo(db),
    settings: settingsRepo(db),
    stats: statsRepo(db),
    leases: leasesRepo(db),
    agentReleases: agentReleasesRepo(db),
  };
}

export type Store = ReturnType<typeof repositories> & {
  dialect: Dialect;
  description: string;
  /** The raw Kysely handle, for modules that own their own tables (drift, leases). */
  db: Kysely<Database>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
};

export function storeOver(handle: DatabaseHandle): Store {
  return {
    ...repositories(handle.db, handle.dialect),
    dialect: handle.dialect,
    description: handle.description,
    db: handle.db,
    async ping() {
      try {
        await handle.db.selectFrom('settings').select('key').limit(1).execute();
        return true;
      } catch {
        return false;
      }
    },
    close: () => handle.close(),
  };
}

/** Open and migrate the store named by `url` (postgres://… or a SQLite file path). */
export async function openStore(url: string, onIdleError?: ConnectionErrorHandler): Promise<Store> {
  return storeOver(await openDatabase(url, onIdleError));
}
