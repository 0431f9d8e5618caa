/** Artifacts as files named by sha256 under a directory (local disk, or a shared mount for replicas). */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { HubError } from '../errors.ts';
import type { ArtifactStore, ByteRange } from './artifact-store.ts';

const SHA256 = /^[0-9a-f]{64}$/;
const READ_CHUNK = 1024 * 1024;

export function createDiskArtifactStore(root: string): ArtifactStore {
  const pathOf = (sha256: string) => {
    if (!SHA256.test(sha256)) throw new HubError('BAD_REQUEST', 'artifact id must be a lowercase hex sha256');
    return join(root, sha256.slice(0, 2), sha256);
  };
  return {
    description: `disk:${root}`,
    async put(bytes, expectedSha256) {
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if (expectedSha256 !== undefined && expectedSha256 !== sha256) {
        throw new HubError(
          'BUNDLE_HASH_MISMATCH',
          `artifact bytes hash to ${sha256}, expected ${expectedSha256}`,
        );
      }
      const target = pathOf(sha256);
      const existing = await stat(target).catch(() => undefined);
      if (existing?.size === bytes.byteLength) return { sha256, sizeBytes: bytes.byteLength, created: false };
      await mkdir(join(root, sha256.slice(0, 2)), { recursive: true });
      // Write to a unique temp name, fsync, then rename: readers never see a partial file.
      const temp = join(root, sha256.slice(0, 2), `.${sha256}.${randomBytes(4).toString('hex')}.tmp`);
      const handle = await open(temp, 'w', 0o644);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      try {
        await rename(temp, target);
      } catch (error) {
        await rm(temp, { force: true });
        throw error;
      }
      return { sha256, sizeBytes: bytes.byteLength, created: true };
    },
    async stat(sha256) {
      const s = await stat(pathOf(sha256)).catch(() => undefined);
      return s?.isFile() ? { sizeBytes: s.size } : undefined;
    },
    async read(sha256: string, range?: ByteRange): Promise<Readable> {
      // 1 MiB reads (Node's default is 64 KiB): a sixteenth of the reads and socket writes for a
      // download; memory stays bounded, one or two chunks per download in flight.
      return createReadStream(pathOf(sha256), {
        highWaterMark: READ_CHUNK,
        ...(range ? { start: range.start, end: range.end } : {}),
      });
    },
    async delete(sha256) {
      await rm(pathOf(sha256), { force: true });
    },
  };
}
