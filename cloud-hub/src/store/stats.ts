/** Prediction-statistics windows as devices send them; each (device, seq) stored once. */
import type { StatsWindowEnvelope } from '@edgefleet/protocol';
import type { Kysely } from 'kysely';
import { fromJson, nowIso, toJson } from './json.ts';
import type { Database } from './schema.ts';

export function statsRepo(db: Kysely<Database>) {
  return {
    /** Returns how many windows were new. */
    async insert(rows: { deviceId: string; window: StatsWindowEnvelope }[]): Promise<number> {
      if (rows.length === 0) return 0;
      const receivedAt = nowIso();
      let inserted = 0;
      for (let i = 0; i < rows.length; i += 300) {
        const r = await db
          .insertInto('stats_windows')
          .values(
            rows.slice(i, i + 300).map(({ deviceId, window: w }) => ({
              device_id: deviceId,
              seq: w.seq,
              model: w.model,
              version: w.version,
              start_ts: w.start,
              end_ts: w.end,
              received_at: receivedAt,
              window: toJson(w.window),
            })),
          )
          .onConflict((oc) => oc.columns(['device_id', 'seq']).doNothing())
          .executeTakeFirst();
        inserted += Number(r.numInsertedOrUpdatedRows ?? 0);
      }
      return inserted;
    },
    /** A version's windows that ended after `since`, newest first (what drift evaluation reads). */
    async recent(model: string, version: string, since: string, limit = 50_000) {
      const rows = await db
        .selectFrom('stats_windows')
        .select(['device_id', 'end_ts', 'window'])
        .where('model', '=', model)
        .where('version', '=', version)
        .where('end_ts', '>', since)
        .orderBy('end_ts', 'desc')
        .limit(limit)
        .execute();
      return rows.map((r) => ({
        deviceId: r.device_id,
        end: r.end_ts,
        window: fromJson<unknown>(r.window, null),
      }));
    },
    /** Model versions that received windows after `since`. */
    async activeVersions(since: string): Promise<{ model: string; version: string }[]> {
      return db
        .selectFrom('stats_windows')
        .select(['model', 'version'])
        .where('end_ts', '>', since)
        .groupBy(['model', 'version'])
        .orderBy('model')
        .orderBy('version')
        .execute();
    },
    async list(model: string, version: string, options: { since?: string; deviceId?: string } = {}) {
      let q = db
        .selectFrom('stats_windows')
        .selectAll()
        .where('model', '=', model)
        .where('version', '=', version)
        .orderBy('end_ts');
      if (options.since) q = q.where('end_ts', '>', options.since);
      if (options.deviceId) q = q.where('device_id', '=', options.deviceId);
      const rows = await q.execute();
      return rows.map((r) => ({
        deviceId: r.device_id,
        seq: r.seq,
        start: r.start_ts,
        end: r.end_ts,
        window: fromJson<unknown>(r.window, null),
      }));
    },
  };
}
