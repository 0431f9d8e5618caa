/** The audit trail: every transition with who and why, per subject (device id, rollout id, model@version). */
import type { Kysely } from 'kysely';
import { fromJson, nowIso, toJson } from './json.ts';
import type { Database } from './schema.ts';

export interface EventRecord {
  id: number;
  ts: string;
  kind: string;
  subject: string;
  actor: string | null;
  message: string;
  data: unknown;
}

export function eventsRepo(db: Kysely<Database>) {
  return {
    async add(e: {
      kind: string;
      subject: string;
      actor?: string | null;
      message: string;
      data?: unknown;
    }): Promise<void> {
      await db
        .insertInto('events')
        .values({
          ts: nowIso(),
          kind: e.kind,
          subject: e.subject,
          actor: e.actor ?? null,
          message: e.message,
          data: e.data === undefined ? null : toJson(e.data),
        })
        .execute();
    },
    async list(options: { subject?: string; limit?: number; afterId?: number } = {}): Promise<EventRecord[]> {
      let q = db
        .selectFrom('events')
        .selectAll()
        .orderBy('id', 'desc')
        .limit(Math.min(options.limit ?? 100, 1000));
      if (options.subject) q = q.where('subject', '=', options.subject);
      if (options.afterId !== undefined) q = q.where('id', '>', options.afterId);
      const rows = await q.execute();
      return rows
        .map((r) => ({
          id: Number(r.id),
          ts: r.ts,
          kind: r.kind,
          subject: r.subject,
          actor: r.actor,
          message: r.message,
          data: fromJson(r.data, null),
        }))
        .reverse();
    },
  };
}
