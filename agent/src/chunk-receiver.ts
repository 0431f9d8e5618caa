/**
 * Receiving a blob over MQTT (`chunks/{sha256}`), for devices that reach only the broker. The
 * device announces what it wants and how much it has in its reported state; the hub streams from
 * there. Chunks land in the same `.part` file an HTTP download would use, so a transfer resumes
 * across dropped connections and restarts, and the sha256 is checked at the end.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, open, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { decodeChunk } from '@edgefleet/protocol';
import type { Logger } from 'pino';
import { AgentError } from './errors.ts';
import { assertDiskRoom, type DownloadProgress } from './hub-api.ts';

/**
 * Announce progress at least this often in bytes, besides the 2 s timer: the hub streams a bounded
 * window (1 MB) ahead of what the device confirmed, so confirming only every 2 s would cap a
 * transfer at about 0.5 MB/s, and on a slow link leave the hub with no confirmation before it
 * declares a stall.
 */
const ANNOUNCE_EVERY_BYTES = 256 * 1024;

interface Transfer {
  sha256: string;
  size: number;
  offset: number;
  /** The offset at the last progress announcement. */
  announced: number;
  handle: FileHandle;
  hash: ReturnType<typeof createHash>;
  path: string;
  onProgress: (p: DownloadProgress) => void;
  done: (error?: Error) => void;
  writing: Promise<void>;
}

export class ChunkReceiver {
  private readonly active = new Map<string, Transfer>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Logger,
    /** Called when the set of transfers or their offsets should be (re)announced. */
    private readonly announce: () => void,
  ) {}

  /** What the reported state says about transfers in progress. */
  transfers(): { sha256: string; offset: number; size: number }[] {
    return [...this.active.values()].map((t) => ({ sha256: t.sha256, offset: t.offset, size: t.size }));
  }

  /** Receive `sha256` into `path` (resuming what is there); resolves once complete and verified. */
  async fetch(
    sha256: string,
    path: string,
    size: number,
    onProgress: (p: DownloadProgress) => void,
  ): Promise<void> {
    const have = (await stat(path).catch(() => undefined))?.size ?? 0;
    await assertDiskRoom(dirname(path), size - have);
    const hash = createHash('sha256');
    if (have > 0) for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    const handle = await open(path, have > 0 ? 'a' : 'w', 0o644);
    const finished = new Promise<void>((resolve, reject) => {
      const transfer: Transfer = {
        sha256,
        size,
        offset: have,
        announced: have,
        handle,
        hash,
        path,
        onProgress,
        writing: Promise.resolve(),
        done: (error) => (error ? reject(error) : resolve()),
      };
      this.active.set(sha256, transfer);
    });
    this.logger.info({ sha256: sha256.slice(0, 12), offset: have, size }, 'receiving over MQTT');
    this.announce();
    // Re-announce while waiting: if chunks stop coming (hub restarted, connection dropped), the hub
    // restarts the stream from the offset we report.
    this.timer ??= setInterval(() => this.announce(), 2000);
    try {
      if (have >= size) await this.complete(this.active.get(sha256) as Transfer);
      await finished;
    } finally {
      this.active.delete(sha256);
      await handle.close().catch(() => undefined);
      if (this.active.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
      this.announce();
    }
  }

  /** Handle a chunk message; chunks out of order are ignored (the next announcement corrects the hub). */
  onChunk(sha256: string, payload: Uint8Array): void {
    const t = this.active.get(sha256);
    const chunk = decodeChunk(payload);
    if (!t || !chunk) return;
    t.writing = t.writing.then(async () => {
      if (chunk.offset !== t.offset) {
        if (chunk.offset > t.offset) this.announce();
        return;
      }
      if (t.offset + chunk.data.byteLength > t.size)
        return t.done(new AgentError('DOWNLOAD_FAILED', 'chunks run past the announced size'));
      await t.handle.write(chunk.data);
      t.hash.update(chunk.data);
      t.offset += chunk.data.byteLength;
      t.onProgress({ bytes: t.offset, total: t.size });
      if (t.offset - t.announced >= ANNOUNCE_EVERY_BYTES) {
        t.announced = t.offset;
        this.announce();
      }
      if (t.offset === t.size) await this.complete(t);
    });
    t.writing.catch((error: unknown) => t.done(error as Error));
  }

  private async complete(t: Transfer): Promise<void> {
    await t.handle.sync();
    const digest = t.hash.digest('hex');
    if (digest !== t.sha256) {
      await rm(t.path, { force: true });
      return t.done(
        new AgentError('ARTIFACT_HASH_MISMATCH', `received bytes hash to ${digest}, expected ${t.sha256}`, {
          transient: true,
        }),
      );
    }
    t.done();
  }

  stop(): void {
    clearInterval(this.timer);
    for (const t of this.active.values())
      t.done(new AgentError('DOWNLOAD_FAILED', 'agent stopping', { transient: true }));
  }
}
