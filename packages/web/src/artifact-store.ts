/**
 * Artifact bytes by sha256: from the cache when there (and still matching its hash), else fetched,
 * verified and cached. Content addressing makes the key the hash itself, so one cached file serves
 * every model version and every hub that names it.
 */
import { sha256Hex } from '@edgefleet/bundle';
import { WebError } from './errors.ts';

/** Fetches the raw bytes of a file named by its sha256 (from the hub, or anywhere in tests). */
export type FetchArtifact = (sha256: string, expectedBytes: number) => Promise<Uint8Array>;

/** A store for verified artifact bytes. */
export interface ArtifactCache {
  readonly kind: string;
  get(sha256: string): Promise<Uint8Array | undefined>;
  put(sha256: string, bytes: Uint8Array): Promise<void>;
  delete(sha256: string): Promise<void>;
}

export const CACHE_NAME = 'edgefleet-artifacts-v1';
// Cache API keys must be http(s) URLs; this one is never fetched, it only names the entry.
const keyOf = (sha256: string) => `https://edgefleet.invalid/sha256/${sha256}`;

/** The browser's Cache API; undefined where it is missing (insecure contexts, old browsers). */
export function browserArtifactCache(name = CACHE_NAME): ArtifactCache | undefined {
  if (typeof globalThis.caches === 'undefined') return undefined;
  const open = () => caches.open(name);
  return {
    kind: 'cache-api',
    async get(sha256) {
      const hit = await (await open()).match(keyOf(sha256));
      return hit ? new Uint8Array(await hit.arrayBuffer()) : undefined;
    },
    async put(sha256, bytes) {
      const body = new Blob([bytes as Uint8Array<ArrayBuffer>]);
      await (await open()).put(
        keyOf(sha256),
        new Response(body, { headers: { 'content-type': 'application/octet-stream' } }),
      );
    },
    async delete(sha256) {
      await (await open()).delete(keyOf(sha256));
    },
  };
}

/** An in-memory cache (Node, workers without Cache API, tests). */
export function memoryArtifactCache(): ArtifactCache {
  const entries = new Map<string, Uint8Array>();
  return {
    kind: 'memory',
    async get(sha256) {
      return entries.get(sha256);
    },
    async put(sha256, bytes) {
      entries.set(sha256, bytes);
    },
    async delete(sha256) {
      entries.delete(sha256);
    },
  };
}

export interface VerifiedArtifact {
  bytes: Uint8Array;
  /** `hit`: served from the cache; `miss`: fetched and stored; `uncached`: fetched, no cache. */
  cache: 'hit' | 'miss' | 'uncached';
  /** A cached copy that no longer matched its hash and was dropped (storage corruption). */
  evictedCorrupt?: boolean;
}

/** Bytes of `sha256`, verified; throws WEB_ARTIFACT_HASH_MISMATCH when the fetched bytes differ. */
export async function getVerifiedArtifact(
  sha256: string,
  sizeBytes: number,
  fetchArtifact: FetchArtifact,
  cache: ArtifactCache | undefined,
): Promise<VerifiedArtifact> {
  let evictedCorrupt = false;
  if (cache) {
    // A failing cache (quota, private mode) must never stop a load: treat it as a miss.
    const cached = await cache.get(sha256).catch(() => undefined);
    if (cached) {
      if ((await sha256Hex(cached)) === sha256) return { bytes: cached, cache: 'hit' };
      evictedCorrupt = true;
      await cache.delete(sha256).catch(() => undefined);
    }
  }
  let bytes: Uint8Array;
  try {
    bytes = await fetchArtifact(sha256, sizeBytes);
  } catch (error) {
    if (error instanceof WebError) throw error;
    throw new WebError('WEB_ARTIFACT_FETCH_FAILED', `could not fetch artifact ${sha256}: ${String(error)}`, {
      cause: error,
    });
  }
  const actual = await sha256Hex(bytes);
  if (actual !== sha256) {
    throw new WebError(
      'WEB_ARTIFACT_HASH_MISMATCH',
      `artifact ${sha256} arrived with sha256 ${actual} (${bytes.byteLength} bytes); refusing it`,
      { details: { expected: sha256, actual, size_bytes: bytes.byteLength } },
    );
  }
  if (!cache) return { bytes, cache: 'uncached', ...(evictedCorrupt ? { evictedCorrupt } : {}) };
  await cache.put(sha256, bytes).catch(() => undefined);
  return { bytes, cache: 'miss', ...(evictedCorrupt ? { evictedCorrupt } : {}) };
}
