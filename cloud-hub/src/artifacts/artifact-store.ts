/**
 * Content-addressed artifact storage. Drivers: a local or shared directory (`disk.ts`); the
 * interface is what an object-store driver (S3-compatible) implements too.
 */
import type { Readable } from 'node:stream';

export interface ByteRange {
  /** First byte, inclusive. */
  start: number;
  /** Last byte, inclusive. */
  end: number;
}

export interface ArtifactStore {
  /** Where artifacts live, for logs and /healthz. */
  readonly description: string;
  /** Store bytes under their sha256 (idempotent); verifies `expectedSha256` when given. */
  put(
    bytes: Uint8Array,
    expectedSha256?: string,
  ): Promise<{ sha256: string; sizeBytes: number; created: boolean }>;
  /** Size of a stored artifact, or undefined. */
  stat(sha256: string): Promise<{ sizeBytes: number } | undefined>;
  /** A stream of the artifact's bytes (a range of them when given). */
  read(sha256: string, range?: ByteRange): Promise<Readable>;
  delete(sha256: string): Promise<void>;
}
