/** One contract suite for every artifact store driver: a directory, and the database (SQLite and PostgreSQL). */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/support/postgres.ts';
import { requireService } from '../../test/support/services.ts';
import type { ArtifactStore } from '../src/artifacts/artifact-store.ts';
import { createDatabaseArtifactStore } from '../src/artifacts/database.ts';
import { createDiskArtifactStore } from '../src/artifacts/disk.ts';
import { openStore } from '../src/store/store.ts';

const postgres = await requireService('postgres');

const drivers: {
  name: string;
  available: boolean;
  open(): Promise<{ store: ArtifactStore; cleanup(): Promise<void> }>;
}[] = [
  {
    name: 'disk',
    available: true,
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'ef-art-'));
      return {
        store: createDiskArtifactStore(dir),
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: 'database (SQLite)',
    available: true,
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'ef-art-db-'));
      const db = await openStore(join(dir, 'hub.db'));
      return {
        store: createDatabaseArtifactStore(db.db, db.description),
        cleanup: async () => {
          await db.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'database (PostgreSQL)',
    available: postgres.available,
    async open() {
      const test = await createTestDatabase();
      const db = await openStore(test.url);
      return {
        store: createDatabaseArtifactStore(db.db, db.description),
        cleanup: async () => {
          await db.close();
          await test.drop();
        },
      };
    },
  },
];

async function readAll(
  store: ArtifactStore,
  sha: string,
  range?: { start: number; end: number },
): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of await store.read(sha, range)) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

for (const driver of drivers) {
  describe.skipIf(!driver.available)(`artifact store contract: ${driver.name}`, () => {
    let store: ArtifactStore;
    let cleanup: () => Promise<void>;
    const big = randomBytes(2.5 * 1024 * 1024 + 123);
    beforeAll(async () => {
      ({ store, cleanup } = await driver.open());
    });
    afterAll(async () => cleanup?.());

    it('stores by sha256, once', async () => {
      const first = await store.put(big);
      const again = await store.put(big);
      expect(first.created).toBe(true);
      expect(again).toMatchObject({ sha256: first.sha256, created: false });
      expect(await store.stat(first.sha256)).toEqual({ sizeBytes: big.byteLength });
    });

    it('reads whole artifacts and byte ranges across chunk boundaries', async () => {
      const { sha256 } = await store.put(big);
      expect((await readAll(store, sha256)).equals(big)).toBe(true);
      const range = { start: 1024 * 1024 - 10, end: 2 * 1024 * 1024 + 10 };
      expect((await readAll(store, sha256, range)).equals(big.subarray(range.start, range.end + 1))).toBe(
        true,
      );
      expect((await readAll(store, sha256, { start: big.byteLength - 1, end: big.byteLength - 1 }))[0]).toBe(
        big[big.byteLength - 1],
      );
    });

    it('refuses bytes that do not match the expected sha256', async () => {
      await expect(store.put(Buffer.from('abc'), 'f'.repeat(64))).rejects.toThrow(/hash/);
    });

    it('forgets deleted artifacts', async () => {
      const { sha256 } = await store.put(Buffer.from('short-lived'));
      await store.delete(sha256);
      expect(await store.stat(sha256)).toBeUndefined();
    });
  });
}
