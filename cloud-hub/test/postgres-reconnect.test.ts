/**
 * PostgreSQL drops the hub's idle connections (a server restart, an administrator's
 * pg_terminate_backend): the hub logs it and carries on with new connections, instead of dying
 * on pg's unheard 'error' event.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.ts';
import { requireService, waitFor } from '../../test/support/services.ts';
import { openStore, type Store } from '../src/store/store.ts';

const postgres = await requireService('postgres');

describe.skipIf(!postgres.available)('store on PostgreSQL', () => {
  let db: TestDatabase | undefined;
  let store: Store | undefined;
  afterAll(async () => {
    await store?.close();
    await db?.drop();
  });

  it('survives its idle connections being terminated, and works on', async () => {
    db = await createTestDatabase();
    const lost: Error[] = [];
    store = await openStore(db.url, (error) => lost.push(error));
    await Promise.all([store.devices.list(), store.devices.list(), store.devices.list()]);

    const admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const killed = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
    );
    await admin.end();
    expect(killed.rowCount).toBeGreaterThan(0);

    // Each killed idle client reports on its own; a query before the last report could be handed
    // a client whose termination notice is still in flight.
    await waitFor(async () => lost.length >= (killed.rowCount ?? 0), 'every lost connection reported');
    expect(lost[0]?.message).toMatch(/terminat/i);
    expect(await store.devices.list()).toEqual([]);
  });
});
