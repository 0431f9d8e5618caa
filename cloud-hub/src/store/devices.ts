/** Enrolled devices: identity, status, reported/desired state, and their telemetry. */
import type { DesiredState, DeviceFacts, ReportedState, TelemetrySample } from '@edgefleet/protocol';
import { type Kysely, sql } from 'kysely';
import type { Dialect } from './db.ts';
import { fromJson, nowIso, toJson } from './json.ts';
import type { Database } from './schema.ts';

export type DeviceStatus = 'online' | 'offline' | 'never-connected';

export interface DeviceRecord {
  id: string;
  name: string;
  tags: string[];
  profile: string | null;
  facts: DeviceFacts;
  status: DeviceStatus;
  agentVersion: string | null;
  statusChangedAt: string | null;
  lastSeenAt: string | null;
  reported: ReportedState | null;
  desired: DesiredState | null;
  lastTelemetry: TelemetrySample | null;
  enrolledAt: string;
  revokedAt: string | null;
}

export interface NewDevice {
  id: string;
  name: string;
  tags: string[];
  profile: string | null;
  facts: DeviceFacts;
  secretHash: string;
}

function toDevice(r: Database['devices']): DeviceRecord {
  return {
    id: r.id,
    name: r.name,
    tags: fromJson<string[]>(r.tags, []),
    profile: r.profile,
    facts: fromJson<DeviceFacts>(r.facts, { arch: 'unknown', platform: 'unknown', accelerators: [] }),
    status: r.status as DeviceStatus,
    agentVersion: r.agent_version,
    statusChangedAt: r.status_changed_at,
    lastSeenAt: r.last_seen_at,
    reported: fromJson<ReportedState | null>(r.reported, null),
    desired: fromJson<DesiredState | null>(r.desired, null),
    lastTelemetry: fromJson<TelemetrySample | null>(r.last_telemetry, null),
    enrolledAt: r.enrolled_at,
    revokedAt: r.revoked_at,
  };
}

const INSERT_CHUNK = 400;
/** Devices per UPDATE of the newest samples (3 parameters each). */
const UPDATE_CHUNK = 500;

export function devicesRepo(db: Kysely<Database>, dialect: Dialect) {
  return {
    async insert(d: NewDevice): Promise<void> {
      await db
        .insertInto('devices')
        .values({
          id: d.id,
          name: d.name,
          tags: toJson(d.tags),
          profile: d.profile,
          facts: toJson(d.facts),
          secret_hash: d.secretHash,
          status: 'never-connected',
          agent_version: d.facts.agentVersion ?? null,
          status_changed_at: null,
          last_seen_at: null,
          reported: null,
          desired: null,
          desired_revision: 0,
          last_telemetry: null,
          last_telemetry_seq: -1,
          enrolled_at: nowIso(),
          revoked_at: null,
        })
        .execute();
    },
    async get(id: string): Promise<DeviceRecord | undefined> {
      const row = await db.selectFrom('devices').selectAll().where('id', '=', id).executeTakeFirst();
      return row && toDevice(row);
    },
    /** The device a secret belongs to, if it is not revoked. */
    async findBySecretHash(hash: string): Promise<DeviceRecord | undefined> {
      const row = await db
        .selectFrom('devices')
        .selectAll()
        .where('secret_hash', '=', hash)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return row && toDevice(row);
    },
    async list(options: { includeRevoked?: boolean } = {}): Promise<DeviceRecord[]> {
      let q = db.selectFrom('devices').selectAll().orderBy('name').orderBy('id');
      if (!options.includeRevoked) q = q.where('revoked_at', 'is', null);
      return (await q.execute()).map(toDevice);
    },
    async nameTaken(name: string): Promise<boolean> {
      const row = await db.selectFrom('devices').select('id').where('name', '=', name).executeTakeFirst();
      return row !== undefined;
    },
    async update(
      id: string,
      patch: { name?: string; tags?: string[]; profile?: string | null },
    ): Promise<boolean> {
      const set: Partial<Database['devices']> = {};
      if (patch.name !== undefined) set.name = patch.name;
      if (patch.tags !== undefined) set.tags = toJson(patch.tags);
      if (patch.profile !== undefined) set.profile = patch.profile;
      if (Object.keys(set).length === 0) return (await this.get(id)) !== undefined;
      const r = await db.updateTable('devices').set(set).where('id', '=', id).executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
    async revoke(id: string): Promise<boolean> {
      const r = await db
        .updateTable('devices')
        .set({ revoked_at: nowIso(), status: 'offline', status_changed_at: nowIso() })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    },
    async setStatus(
      id: string,
      status: 'online' | 'offline',
      agentVersion: string,
      at: string,
    ): Promise<void> {
      await db
        .updateTable('devices')
        .set({ status, agent_version: agentVersion, status_changed_at: at, last_seen_at: at })
        .where('id', '=', id)
        .execute();
    },
    /** A sign of life without a state change (a browser's stats POST). */
    async touch(id: string, at: string): Promise<void> {
      await db.updateTable('devices').set({ last_seen_at: at }).where('id', '=', id).execute();
    },
    async setReported(id: string, reported: ReportedState): Promise<void> {
      await db
        .updateTable('devices')
        .set({ reported: toJson(reported), last_seen_at: nowIso(), agent_version: reported.agentVersion })
        .where('id', '=', id)
        .execute();
    },
    /** Replace a device's desired state, bumping its revision; returns what to publish. */
    async writeDesired(
      id: string,
      build: (current: DesiredState | null, nextRevision: number) => DesiredState,
    ): Promise<DesiredState | undefined> {
      return db.transaction().execute(async (trx) => {
        const row = await trx
          .selectFrom('devices')
          .select(['desired', 'desired_revision'])
          .where('id', '=', id)
          .$if(dialect === 'postgres', (q) => q.forUpdate())
          .executeTakeFirst();
        if (!row) return undefined;
        const desired = build(fromJson<DesiredState | null>(row.desired, null), row.desired_revision + 1);
        await trx
          .updateTable('devices')
          .set({ desired: toJson(desired), desired_revision: desired.revision })
          .where('id', '=', id)
          .execute();
        return desired;
      });
    },
    /** Store telemetry samples; each (device, seq) once. Returns how many were new. */
    /**
     * Store a group commit's samples: one transaction (one commit, not one per statement), the
     * rows in multi-row INSERTs, and each device's newest sample in one UPDATE for all devices
     * (it was one UPDATE per device, each its own commit: the bulk of a batch's time on PostgreSQL).
     */
    async insertTelemetry(rows: { deviceId: string; sample: TelemetrySample }[]): Promise<number> {
      if (rows.length === 0) return 0;
      const receivedAt = nowIso();
      // Keep the newest sample on the device row for fleet listings.
      const newest = new Map<string, TelemetrySample>();
      for (const r of rows) {
        const seen = newest.get(r.deviceId);
        if (!seen || r.sample.seq > seen.seq) newest.set(r.deviceId, r.sample);
      }
      const latest = [...newest];
      return db.transaction().execute(async (trx) => {
        let inserted = 0;
        for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
          const chunk = rows.slice(i, i + INSERT_CHUNK);
          const result = await trx
            .insertInto('telemetry')
            .values(
              chunk.map((r) => ({
                device_id: r.deviceId,
                seq: r.sample.seq,
                ts: r.sample.ts,
                received_at: receivedAt,
                data: toJson(r.sample),
              })),
            )
            .onConflict((oc) => oc.columns(['device_id', 'seq']).doNothing())
            .executeTakeFirst();
          inserted += Number(result.numInsertedOrUpdatedRows ?? 0);
        }
        const seqType = dialect === 'postgres' ? sql`::integer` : sql``;
        for (let i = 0; i < latest.length; i += UPDATE_CHUNK) {
          const values = latest
            .slice(i, i + UPDATE_CHUNK)
            .map(([deviceId, sample]) => sql`(${deviceId}, ${sample.seq}${seqType}, ${toJson(sample)})`);
          // UPDATE … FROM (VALUES …): PostgreSQL, and SQLite since 3.33; unnamed VALUES columns are
          // column1, column2, … in both.
          await sql`UPDATE devices SET last_telemetry = v.column3, last_telemetry_seq = v.column2,
              last_seen_at = ${receivedAt}
            FROM (VALUES ${sql.join(values)}) AS v
            WHERE devices.id = v.column1 AND devices.last_telemetry_seq < v.column2`.execute(trx);
        }
        return inserted;
      });
    },
    async telemetry(
      deviceId: string,
      options: { sinceSeq?: number; limit?: number } = {},
    ): Promise<(TelemetrySample & { received_at: string })[]> {
      const rows = await db
        .selectFrom('telemetry')
        .select(['data', 'received_at'])
        .where('device_id', '=', deviceId)
        .where('seq', '>', options.sinceSeq ?? -1)
        .orderBy('seq', 'desc')
        .limit(Math.min(options.limit ?? 500, 10_000))
        .execute();
      // received_at next to the device's ts shows ingest lag and clock skew.
      return rows
        .map((r) => ({
          ...fromJson<TelemetrySample>(r.data, {} as TelemetrySample),
          received_at: r.received_at,
        }))
        .reverse();
    },
    /** Samples with `from <= ts < to` (ISO strings), oldest first. */
    async telemetryBetween(deviceId: string, from: string, to: string): Promise<TelemetrySample[]> {
      const rows = await db
        .selectFrom('telemetry')
        .select('data')
        .where('device_id', '=', deviceId)
        .where('ts', '>=', from)
        .where('ts', '<', to)
        .orderBy('seq')
        .limit(50_000)
        .execute();
      return rows.map((r) => fromJson<TelemetrySample>(r.data, {} as TelemetrySample));
    },
    async telemetryCount(deviceId?: string): Promise<number> {
      let q = db.selectFrom('telemetry').select((eb) => eb.fn.countAll<number>().as('n'));
      if (deviceId) q = q.where('device_id', '=', deviceId);
      return Number((await q.executeTakeFirstOrThrow()).n);
    },
  };
}
