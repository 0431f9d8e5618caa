/**
 * Artifacts over MQTT, for devices that reach only the broker. A device lists the blobs it is
 * receiving and how much it has (`transfers` in its reported state); the hub streams chunks from
 * that offset on `chunks/{sha256}`, a bounded window ahead of what the device confirmed. When the
 * device stops confirming (connection dropped, chunks lost), streaming restarts from its offset.
 */
import { encodeChunk, topics } from '@edgefleet/protocol';
import { assertMayReadArtifact } from '../access.ts';
import type { HubContext } from '../context.ts';

const CHUNK_BYTES = 64 * 1024;
const WINDOW_BYTES = 1024 * 1024;
const STALL_MS = 5000;

interface Stream {
  deviceId: string;
  sha256: string;
  size: number;
  /** Next byte to send. */
  next: number;
  /** What the device last confirmed having. */
  confirmed: number;
  confirmedAt: number;
  wake: (() => void) | undefined;
  stopped: boolean;
}

export interface ChunkStreamer {
  onTransfers(
    deviceId: string,
    transfers: readonly { sha256: string; offset: number; size: number }[],
  ): Promise<void>;
  stop(): void;
}

async function readRange(ctx: HubContext, sha256: string, start: number, end: number): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  for await (const chunk of await ctx.artifacts.read(sha256, { start, end })) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

export function createChunkStreamer(ctx: HubContext): ChunkStreamer {
  const streams = new Map<string, Stream>();

  function resendFrom(s: Stream, offset: number): void {
    ctx.logger.info(
      { deviceId: s.deviceId, sha256: s.sha256.slice(0, 12), from: offset },
      'resending artifact chunks from the device offset',
    );
    s.next = offset;
  }

  async function run(s: Stream): Promise<void> {
    while (!s.stopped) {
      if (s.next - s.confirmed >= WINDOW_BYTES || s.next >= s.size) {
        // Wait for the device to confirm progress; if it does not, resend from what it has.
        await new Promise<void>((resolve) => {
          s.wake = resolve;
          setTimeout(resolve, STALL_MS).unref();
        });
        s.wake = undefined;
        if (!s.stopped && Date.now() - s.confirmedAt >= STALL_MS && s.next !== s.confirmed)
          resendFrom(s, s.confirmed);
        continue;
      }
      // A resend may move `s.next` while this chunk is read or published: the chunk keeps the
      // offset its bytes were read from, and only advances `s.next` if no resend moved it.
      const offset = s.next;
      const end = Math.min(offset + CHUNK_BYTES, s.size) - 1;
      try {
        const data = await readRange(ctx, s.sha256, offset, end);
        await ctx.broker.publish(
          topics.chunks(s.deviceId, s.sha256),
          Buffer.from(encodeChunk(offset, data)),
          { retain: false },
        );
        if (s.next === offset) s.next = end + 1;
      } catch (error) {
        ctx.logger.warn(
          { err: error, deviceId: s.deviceId, sha256: s.sha256.slice(0, 12) },
          'chunk send failed; retrying',
        );
        await new Promise((resolve) => setTimeout(resolve, 1000).unref());
      }
    }
  }

  return {
    async onTransfers(deviceId, transfers) {
      const wanted = new Set(transfers.map((t) => t.sha256));
      for (const [key, s] of streams) {
        if (s.deviceId === deviceId && !wanted.has(s.sha256)) {
          s.stopped = true;
          s.wake?.();
          streams.delete(key);
        }
      }
      for (const t of transfers) {
        const key = `${deviceId}:${t.sha256}`;
        const existing = streams.get(key);
        if (existing) {
          if (t.offset !== existing.confirmed) existing.confirmedAt = Date.now();
          // Behind what we sent and not moving: the device lost chunks; start again from its offset.
          if (t.offset < existing.confirmed || t.offset > existing.next) resendFrom(existing, t.offset);
          existing.confirmed = t.offset;
          existing.wake?.();
          continue;
        }
        try {
          await assertMayReadArtifact(ctx, { kind: 'device', role: 'device', deviceId }, t.sha256);
        } catch {
          ctx.logger.warn(
            { deviceId, sha256: t.sha256.slice(0, 12) },
            'device asked for an artifact it is not assigned; ignored',
          );
          continue;
        }
        const stat = await ctx.artifacts.stat(t.sha256);
        if (!stat || t.offset >= stat.sizeBytes) continue;
        const s: Stream = {
          deviceId,
          sha256: t.sha256,
          size: stat.sizeBytes,
          next: t.offset,
          confirmed: t.offset,
          confirmedAt: Date.now(),
          wake: undefined,
          stopped: false,
        };
        streams.set(key, s);
        ctx.logger.info(
          { deviceId, sha256: t.sha256.slice(0, 12), from: t.offset, size: stat.sizeBytes },
          'streaming artifact over MQTT',
        );
        void run(s);
      }
    },
    stop() {
      for (const s of streams.values()) {
        s.stopped = true;
        s.wake?.();
      }
      streams.clear();
    },
  };
}
