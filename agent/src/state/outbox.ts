/**
 * A bounded on-disk outbox for messages that must reach the hub (telemetry, stats windows). Pure JS,
 * no SQLite, so the agent stays free of compiled modules. Entries are appended as JSON lines to
 * segment files with an fsync each; a cursor file records what the broker acknowledged. A torn
 * last line after a power cut is ignored. When the byte bound is hit the oldest segment is dropped
 * and counted, so an agent offline for weeks keeps the newest data and never fills the disk.
 */
import { mkdir, open, readdir, readFile, rm, stat, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { readJson, writeFileAtomic } from '../files.ts';

export interface OutboxEntry {
  id: number;
  topic: string;
  payload: string;
}

interface Segment {
  name: string;
  firstId: number;
  lastId: number;
  bytes: number;
}

export interface OutboxOptions {
  /** Upper bound for all segments together. */
  maxBytes?: number;
  /** A new segment starts past this size. */
  segmentBytes?: number;
}

const SEGMENT = /^seg-(\d{16})\.jsonl$/;

export class Outbox {
  private segments: Segment[] = [];
  private ackedThrough = 0;
  private nextId = 1;
  private dropped = 0;
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
    private readonly segmentBytes: number,
  ) {}

  static async open(dir: string, options: OutboxOptions = {}): Promise<Outbox> {
    const outbox = new Outbox(dir, options.maxBytes ?? 50 * 1024 * 1024, options.segmentBytes ?? 1024 * 1024);
    await mkdir(dir, { recursive: true });
    await outbox.load();
    return outbox;
  }

  private async load(): Promise<void> {
    const cursor = await readJson<{ ackedThrough: number; dropped?: number }>(
      join(this.dir, 'cursor.json'),
    ).catch(() => undefined);
    this.ackedThrough = cursor?.ackedThrough ?? 0;
    this.dropped = cursor?.dropped ?? 0;
    const names = (await readdir(this.dir)).filter((n) => SEGMENT.test(n)).sort();
    for (const name of names) {
      const path = join(this.dir, name);
      const text = await readFile(path, 'utf8');
      const { entries, goodBytes } = parseSegment(text);
      if (goodBytes < Buffer.byteLength(text)) await truncate(path, goodBytes); // a torn write from a power cut
      const first = entries[0];
      const last = entries.at(-1);
      if (!first || !last) {
        await rm(path, { force: true });
        continue;
      }
      this.segments.push({ name, firstId: first.id, lastId: last.id, bytes: goodBytes });
    }
    this.nextId = Math.max(this.ackedThrough, this.segments.at(-1)?.lastId ?? 0) + 1;
    await this.deleteAcknowledgedSegments();
  }

  /** Serialize mutations so appends and acks never interleave on disk. */
  private serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Append one message durably; resolves with its id once it is on disk. */
  append(topic: string, payload: string): Promise<number> {
    return this.serial(async () => {
      const id = this.nextId++;
      const line = `${JSON.stringify({ id, topic, payload })}\n`;
      const bytes = Buffer.byteLength(line);
      let current = this.segments.at(-1);
      if (!current || current.bytes + bytes > this.segmentBytes) {
        current = {
          name: `seg-${String(id).padStart(16, '0')}.jsonl`,
          firstId: id,
          lastId: id - 1,
          bytes: 0,
        };
        this.segments.push(current);
      }
      const handle = await open(join(this.dir, current.name), 'a', 0o600);
      try {
        await handle.write(line);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      current.lastId = id;
      current.bytes += bytes;
      await this.enforceBound();
      return id;
    });
  }

  private async enforceBound(): Promise<void> {
    let total = this.segments.reduce((sum, s) => sum + s.bytes, 0);
    while (total > this.maxBytes && this.segments.length > 1) {
      const oldest = this.segments.shift() as Segment;
      const unsent = Math.max(0, oldest.lastId - Math.max(oldest.firstId - 1, this.ackedThrough));
      this.dropped += unsent;
      if (oldest.lastId > this.ackedThrough) this.ackedThrough = oldest.lastId;
      total -= oldest.bytes;
      await rm(join(this.dir, oldest.name), { force: true });
      await this.writeCursor();
    }
  }

  /** Up to `limit` unacknowledged entries, oldest first. */
  async pending(limit = 500): Promise<OutboxEntry[]> {
    await this.chain;
    const out: OutboxEntry[] = [];
    for (const segment of this.segments) {
      if (segment.lastId <= this.ackedThrough) continue;
      const text = await readFile(join(this.dir, segment.name), 'utf8').catch(() => '');
      for (const entry of parseSegment(text).entries) {
        if (entry.id > this.ackedThrough) out.push(entry);
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  /** Everything up to and including `id` reached the broker. */
  ack(id: number): Promise<void> {
    return this.serial(async () => {
      if (id <= this.ackedThrough) return;
      this.ackedThrough = id;
      await this.writeCursor();
      await this.deleteAcknowledgedSegments();
    });
  }

  private async deleteAcknowledgedSegments(): Promise<void> {
    // Keep the newest segment (appends continue there) unless it is fully acknowledged and big.
    while (this.segments.length > 0) {
      const oldest = this.segments[0] as Segment;
      const isLast = this.segments.length === 1;
      if (oldest.lastId > this.ackedThrough || (isLast && oldest.bytes < this.segmentBytes)) break;
      this.segments.shift();
      await rm(join(this.dir, oldest.name), { force: true });
    }
  }

  private async writeCursor(): Promise<void> {
    await writeFileAtomic(
      join(this.dir, 'cursor.json'),
      JSON.stringify({ ackedThrough: this.ackedThrough, dropped: this.dropped }),
    );
  }

  /** Entries waiting, bytes on disk, and entries dropped over the bound since the outbox was created. */
  async stats(): Promise<{ pending: number; bytes: number; dropped: number }> {
    await this.chain;
    let pending = 0;
    let bytes = 0;
    for (const s of this.segments) {
      bytes += (await stat(join(this.dir, s.name)).catch(() => ({ size: 0 }))).size;
      pending += Math.max(0, s.lastId - Math.max(s.firstId - 1, this.ackedThrough));
    }
    return { pending, bytes, dropped: this.dropped };
  }
}

function parseSegment(text: string): { entries: OutboxEntry[]; goodBytes: number } {
  const entries: OutboxEntry[] = [];
  let goodBytes = 0;
  let start = 0;
  for (;;) {
    const end = text.indexOf('\n', start);
    if (end < 0) break;
    const line = text.slice(start, end);
    try {
      const entry = JSON.parse(line) as OutboxEntry;
      if (
        typeof entry.id !== 'number' ||
        typeof entry.topic !== 'string' ||
        typeof entry.payload !== 'string'
      )
        break;
      entries.push(entry);
    } catch {
      break;
    }
    goodBytes += Buffer.byteLength(line) + 1;
    start = end + 1;
  }
  return { entries, goodBytes };
}
