/** One contract suite, run against every store driver: SQLite (embedded) and PostgreSQL. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.ts';
import { requireService } from '../../test/support/services.ts';
import { hashSecret } from '../src/auth/secrets.ts';
import { withDefaults } from '../src/rollouts/plan.ts';
import { ensureAdminToken } from '../src/setup.ts';
import { openStore, type Store } from '../src/store/store.ts';

const postgres = await requireService('postgres');

interface Driver {
  name: string;
  available: boolean;
  open(): Promise<{ store: Store; cleanup(): Promise<void> }>;
}

const drivers: Driver[] = [
  {
    name: 'sqlite',
    available: true,
    async open() {
      const dir = await mkdtemp(join(tmpdir(), 'ef-store-'));
      const store = await openStore(join(dir, 'hub.db'));
      return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
    },
  },
  {
    name: 'postgres',
    available: postgres.available,
    async open() {
      const db: TestDatabase = await createTestDatabase();
      const store = await openStore(db.url);
      return { store, cleanup: () => db.drop() };
    },
  },
];

const facts = { arch: 'x64', platform: 'linux', accelerators: [] };
const sample = (seq: number) => ({
  seq,
  ts: new Date(Date.UTC(2026, 0, 1, 0, 0, seq)).toISOString(),
  cpu_load_pct: 10,
  mem_used_mb: 100,
  mem_total_mb: 1000,
  rss_mb: 50,
  disk_free_mb: 5000,
  disk_total_mb: 10000,
  temp_c: null,
  uptime_s: seq,
});

for (const driver of drivers) {
  describe.skipIf(!driver.available)(`store contract: ${driver.name}`, () => {
    let store: Store;
    let cleanup: () => Promise<void>;
    beforeAll(async () => {
      ({ store, cleanup } = await driver.open());
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });

    it('migrates idempotently and answers a ping', async () => {
      expect(await store.ping()).toBe(true);
    });

    it('consumes an enrollment token exactly as many times as it allows', async () => {
      await store.tokens.insertEnrollmentToken({
        id: 'e1',
        hash: 'h-e1',
        uses: 2,
        tags: ['lab'],
        expiresAt: '2999-01-01T00:00:00.000Z',
        createdBy: null,
      });
      const results = await Promise.all([1, 2, 3].map(() => store.tokens.consumeEnrollmentToken('h-e1')));
      expect(results.filter(Boolean)).toHaveLength(2);
      expect(results.find(Boolean)?.tags).toEqual(['lab']);
    });

    it('refuses an expired enrollment token', async () => {
      await store.tokens.insertEnrollmentToken({
        id: 'e2',
        hash: 'h-e2',
        uses: 5,
        tags: [],
        expiresAt: '2000-01-01T00:00:00.000Z',
        createdBy: null,
      });
      expect(await store.tokens.consumeEnrollmentToken('h-e2')).toBeUndefined();
    });

    it('finds an API token by hash until it is revoked', async () => {
      await store.tokens.insertApiToken({
        id: 't1',
        name: 'ci',
        role: 'viewer',
        hash: 'h-t1',
        createdBy: null,
      });
      expect((await store.tokens.findActiveApiToken('h-t1'))?.role).toBe('viewer');
      expect(await store.tokens.revokeApiToken('t1')).toBe(true);
      expect(await store.tokens.findActiveApiToken('h-t1')).toBeUndefined();
      expect(await store.tokens.revokeApiToken('t1')).toBe(false);
    });

    it('lets replicas starting together share one EDGEFLEET_ADMIN_TOKEN', async () => {
      const results = await Promise.all(
        [1, 2, 3].map(() => ensureAdminToken(store, '/nonexistent', 'efa_shared_by_replicas')),
      );
      expect(results.every((r) => r.fromEnv)).toBe(true);
      expect((await store.tokens.findActiveApiToken(hashSecret('efa_shared_by_replicas')))?.role).toBe(
        'admin',
      );
    });

    it('lists the leases their holders stopped renewing, and forgets one only while it stays expired', async () => {
      const t0 = new Date('2026-01-01T00:00:00.000Z');
      const later = new Date(t0.getTime() + 20_000);
      expect(await store.leases.acquire('replica:a', 'a', 15_000, t0)).toBe(true);
      expect(await store.leases.acquire('replica:b', 'b', 15_000, t0)).toBe(true);
      expect(await store.leases.acquire('replica:b', 'b', 15_000, later)).toBe(true); // b renewed
      expect(await store.leases.expired('replica:', later)).toEqual(['replica:a']);
      await store.leases.forgetIfExpired('replica:b', later); // alive: kept
      await store.leases.forgetIfExpired('replica:a', later);
      expect(await store.leases.expired('replica:', new Date(later.getTime() + 60_000))).toEqual([
        'replica:b',
      ]);
    });

    it('stores each telemetry sample once, however often it arrives', async () => {
      await store.devices.insert({
        id: 'd1',
        name: 'pi-1',
        tags: [],
        profile: null,
        facts,
        secretHash: 'h-d1',
      });
      const first = await store.devices.insertTelemetry(
        [1, 2, 3].map((s) => ({ deviceId: 'd1', sample: sample(s) })),
      );
      const again = await store.devices.insertTelemetry(
        [2, 3, 4].map((s) => ({ deviceId: 'd1', sample: sample(s) })),
      );
      expect(first).toBe(3);
      expect(again).toBe(1);
      expect(await store.devices.telemetryCount('d1')).toBe(4);
      expect((await store.devices.get('d1'))?.lastTelemetry?.seq).toBe(4);
      expect((await store.devices.telemetry('d1', { sinceSeq: 2 })).map((s) => s.seq)).toEqual([3, 4]);
    });

    it('keeps each device’s newest sample when one batch holds several devices', async () => {
      for (const id of ['m1', 'm2']) {
        await store.devices.insert({ id, name: id, tags: [], profile: null, facts, secretHash: `h-${id}` });
      }
      await store.devices.insertTelemetry([{ deviceId: 'm2', sample: sample(9) }]);
      const stored = await store.devices.insertTelemetry([
        { deviceId: 'm1', sample: sample(2) },
        { deviceId: 'm2', sample: sample(3) },
        { deviceId: 'm1', sample: sample(5) },
        { deviceId: 'm1', sample: sample(4) },
      ]);
      expect(stored).toBe(4);
      expect((await store.devices.get('m1'))?.lastTelemetry?.seq).toBe(5);
      // An older sample arriving late does not replace the newer one.
      expect((await store.devices.get('m2'))?.lastTelemetry?.seq).toBe(9);
      expect((await store.devices.get('m1'))?.lastSeenAt).not.toBeNull();
    });

    it('bumps the desired revision on every write', async () => {
      await store.devices.insert({
        id: 'd2',
        name: 'pi-2',
        tags: ['a'],
        profile: null,
        facts,
        secretHash: 'h-d2',
      });
      const build = (_: unknown, revision: number) => ({
        revision,
        issuedAt: new Date().toISOString(),
        models: {},
        config: {},
      });
      expect((await store.devices.writeDesired('d2', build))?.revision).toBe(1);
      expect((await store.devices.writeDesired('d2', build))?.revision).toBe(2);
      expect((await store.devices.get('d2'))?.desired?.revision).toBe(2);
      expect(await store.devices.writeDesired('nope', build)).toBeUndefined();
    });

    it('keeps a revoked device out of listings and secret lookups', async () => {
      await store.devices.insert({
        id: 'd3',
        name: 'pi-3',
        tags: [],
        profile: null,
        facts,
        secretHash: 'h-d3',
      });
      expect((await store.devices.findBySecretHash('h-d3'))?.id).toBe('d3');
      expect(await store.devices.revoke('d3')).toBe(true);
      expect(await store.devices.findBySecretHash('h-d3')).toBeUndefined();
      expect((await store.devices.list()).map((d) => d.id)).not.toContain('d3');
    });

    it('refuses a second copy of a model version and keeps the first intact', async () => {
      const version = {
        model: 'm',
        version: '1.0.0',
        createdBy: null,
        manifestText: '{}',
        manifestSha256: 'a'.repeat(64),
        signatureText: '{}',
        signedBy: 'k',
        sourceFormat: 'onnx',
        files: [
          {
            file: 'cpu/model.onnx',
            sha256: 'b'.repeat(64),
            sizeBytes: 5_000_000_000,
            kind: 'artifact' as const,
          },
        ],
      };
      expect(await store.models.insertVersion(version)).toBe(true);
      expect(await store.models.insertVersion({ ...version, manifestText: '{"x":1}' })).toBe(false);
      const stored = await store.models.getVersion('m', '1.0.0');
      expect(stored?.manifestText).toBe('{}');
      expect(stored?.files[0]?.sizeBytes).toBe(5_000_000_000);
      expect(await store.models.versionsWithFile('b'.repeat(64))).toEqual([
        { model: 'm', version: '1.0.0', sizeBytes: 5_000_000_000 },
      ]);
      expect((await store.models.listModels())[0]?.versions).toHaveLength(1);
    });

    it('keeps the first agent release per version and arch, and lists them newest first', async () => {
      const release = {
        version: '0.2.0',
        arch: 'x64',
        sha256: 'c'.repeat(64),
        sizeBytes: 5_000_000_000,
        manifestText: '{"format":"edgefleet-agent-release"}',
        signatureText: '{"algorithm":"ed25519"}',
        createdBy: 'token:ci',
      };
      expect(await store.agentReleases.put(release)).toBe(true);
      expect(await store.agentReleases.put({ ...release, sha256: 'd'.repeat(64) })).toBe(false);
      const stored = await store.agentReleases.get('0.2.0', 'x64');
      expect(stored).toMatchObject({ ...release, createdAt: expect.any(String) });
      expect(await store.agentReleases.get('0.2.0', 'arm64')).toBeUndefined();

      await new Promise((resolve) => setTimeout(resolve, 5)); // distinct created_at
      await store.agentReleases.put({ ...release, arch: 'arm64', sha256: 'e'.repeat(64) });
      await new Promise((resolve) => setTimeout(resolve, 5));
      await store.agentReleases.put({ ...release, version: '0.3.0', sha256: 'f'.repeat(64) });
      expect((await store.agentReleases.list()).map((r) => `${r.version}/${r.arch}`)).toEqual([
        '0.3.0/x64',
        '0.2.0/arm64',
        '0.2.0/x64',
      ]);
      expect((await store.agentReleases.listVersion('0.2.0')).map((r) => r.arch)).toEqual(['arm64', 'x64']);
      expect(await store.agentReleases.listVersion('9.9.9')).toEqual([]);
    });

    it('records rollouts with their devices and guards state transitions', async () => {
      await store.rollouts.insert({
        id: 'r1',
        model: 'm',
        version: '1.0.0',
        selector: { all: true },
        plan: withDefaults({ deviceTimeoutSeconds: 60 }),
        createdBy: 'admin',
        devices: [
          { deviceId: 'd1', batch: 0 },
          { deviceId: 'd2', batch: 0 },
        ],
      });
      await store.rollouts.updateDevice('r1', 'd1', {
        state: 'active',
        artifactSha256: 'b'.repeat(64),
        assigned: true,
      });
      expect((await store.rollouts.devices('r1')).map((d) => d.state)).toEqual(['active', 'pending']);
      expect(await store.rollouts.setState('r1', 'completed', 'done', ['running'])).toBe(true);
      expect(await store.rollouts.setState('r1', 'cancelled', 'late', ['running'])).toBe(false);
      expect((await store.rollouts.get('r1'))?.finishedAt).not.toBeNull();
    });

    it('keeps the first writer of a shared setting', async () => {
      const a = await store.settings.getOrCreate('k', () => 'first');
      const b = await store.settings.getOrCreate('k', () => 'second');
      expect([a, b]).toEqual(['first', 'first']);
    });

    it('overwrites a setting with set', async () => {
      await store.settings.set('drift-status:m@1.0.0', 'ok');
      await store.settings.set('drift-status:m@1.0.0', 'drift');
      expect(await store.settings.get('drift-status:m@1.0.0')).toBe('drift');
    });

    it("reads a version's recent statistics windows newest first, and which versions have any", async () => {
      const envelope = (seq: number, version: string, minute: number) => ({
        seq,
        model: 'stats-m',
        version,
        start: new Date(Date.UTC(2030, 0, 1, 0, minute - 1)).toISOString(),
        end: new Date(Date.UTC(2030, 0, 1, 0, minute)).toISOString(),
        window: { n: seq },
      });
      await store.devices.insert({
        id: 'stats-dev',
        name: 'stats-dev',
        tags: [],
        profile: null,
        facts,
        secretHash: 'h-stats',
      });
      expect(
        await store.stats.insert([
          { deviceId: 'stats-dev', window: envelope(1, '1.0.0', 1) },
          { deviceId: 'stats-dev', window: envelope(2, '1.0.0', 2) },
          { deviceId: 'stats-dev', window: envelope(3, '2.0.0', 3) },
          { deviceId: 'stats-dev', window: envelope(2, '1.0.0', 2) },
        ]),
      ).toBe(3);
      const since = new Date(Date.UTC(2030, 0, 1, 0, 1, 30)).toISOString();
      expect(await store.stats.recent('stats-m', '1.0.0', since)).toEqual([
        { deviceId: 'stats-dev', end: envelope(2, '1.0.0', 2).end, window: { n: 2 } },
      ]);
      expect(
        (await store.stats.recent('stats-m', '1.0.0', '2000-01-01T00:00:00.000Z')).map((w) => w.window),
      ).toEqual([{ n: 2 }, { n: 1 }]);
      expect(await store.stats.activeVersions(since)).toEqual([
        { model: 'stats-m', version: '1.0.0' },
        { model: 'stats-m', version: '2.0.0' },
      ]);
    });

    it('gives a lease to one holder at a time, until it expires or is released', async () => {
      const t0 = new Date('2030-01-01T00:00:00Z');
      const later = (ms: number) => new Date(t0.getTime() + ms);
      const results = await Promise.all(
        ['a', 'b', 'c'].map((h) => store.leases.acquire('work', h, 10_000, t0)),
      );
      expect(results.filter(Boolean)).toHaveLength(1);
      const holder = await store.leases.holder('work', t0);
      expect(await store.leases.acquire('work', holder as string, 10_000, later(5000))).toBe(true);
      expect(await store.leases.acquire('work', holder === 'a' ? 'b' : 'a', 10_000, later(6000))).toBe(false);
      expect(await store.leases.acquire('work', 'z', 10_000, later(16_000))).toBe(true);
      await store.leases.release('work', 'z');
      expect(await store.leases.holder('work', later(16_001))).toBeUndefined();
    });

    it('lists events in order per subject', async () => {
      await store.events.add({ kind: 'x', subject: 's', message: 'one' });
      await store.events.add({ kind: 'x', subject: 's', message: 'two', data: { n: 2 } });
      const events = await store.events.list({ subject: 's' });
      expect(events.map((e) => e.message)).toEqual(['one', 'two']);
      expect(events[1]?.data).toEqual({ n: 2 });
    });
  });
}
