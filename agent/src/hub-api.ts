/** The agent's HTTP calls to the hub: enrollment, signed manifests, resumable artifact downloads. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fromBase64, type SignatureFile } from '@edgefleet/bundle';
import {
  API_PREFIX,
  type ApiErrorBody,
  type EnrollRequest,
  type EnrollResponse,
  enrollResponse,
} from '@edgefleet/protocol';
import { AgentError } from './errors.ts';
import { type HubHttp, type HubRequest, type HubResponse, hubHttp } from './hub-http.ts';

/** HTTP to the hub without a pinned CA. */
const plainHttp: HubHttp = hubHttp();

async function hubFetch(http: HubHttp, url: string, init: HubRequest, what: string): Promise<HubResponse> {
  let response: HubResponse;
  try {
    response = await http(url, init);
  } catch (cause) {
    throw new AgentError('HUB_UNREACHABLE', `${what}: cannot reach ${new URL(url).origin}`, {
      cause,
      transient: true,
    });
  }
  if (!response.ok && response.status !== 206) {
    const body = (await response.json().catch(() => undefined)) as ApiErrorBody | undefined;
    const message = `${what}: hub answered ${response.status}${body?.error ? ` ${body.error.code}: ${body.error.message}` : ''}`;
    throw new AgentError('HUB_REFUSED', message, {
      transient: response.status >= 500 || response.status === 429,
      details: { status: response.status },
    });
  }
  return response;
}

export async function enroll(
  hub: string,
  request: EnrollRequest,
  http: HubHttp = plainHttp,
): Promise<EnrollResponse> {
  const response = await hubFetch(
    http,
    `${hub}${API_PREFIX}/enroll`,
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) },
    'enrollment',
  );
  const parsed = enrollResponse.safeParse(await response.json());
  if (!parsed.success)
    throw new AgentError('ENROLL_FAILED', 'the hub answered enrollment with an unexpected body');
  return parsed.data;
}

export interface DownloadProgress {
  bytes: number;
  total: number;
}

/** Bytes free for unprivileged writes on the filesystem holding `dir`. */
/** Free and total bytes of the filesystem holding `dir`. */
export async function diskSpace(dir: string): Promise<{ free: number; total: number }> {
  const s = await statfs(dir);
  return { free: Number(s.bavail) * Number(s.bsize), total: Number(s.blocks) * Number(s.bsize) };
}

/** Refuse (DISK_FULL, retried later) a download that would leave less than the reserve free. */
export async function assertDiskRoom(dir: string, neededBytes: number): Promise<void> {
  if (neededBytes <= 0) return;
  const { free, total } = await diskSpace(dir);
  const reserve = reserveFor(total);
  if (free < neededBytes + reserve) {
    throw new AgentError(
      'DISK_FULL',
      `need ${neededBytes} bytes plus a ${reserve}-byte reserve, ${free} free`,
      { transient: true },
    );
  }
}

/** Space a download must leave free: 64 MB, or 5% of a small disk (an SD card must not fill up). */
export function reserveFor(totalBytes: number): number {
  return Math.min(64 * 1024 * 1024, Math.floor(totalBytes * 0.05));
}

async function hashFile(path: string): Promise<ReturnType<typeof createHash>> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash;
}

export class HubApi {
  constructor(
    readonly hub: string,
    private readonly secret: string,
    private readonly http: HubHttp = plainHttp,
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { authorization: `Bearer ${this.secret}`, ...extra };
  }

  /** The signed manifest of a model version: its exact bytes and signature. */
  async manifest(
    name: string,
    version: string,
  ): Promise<{ manifestBytes: Uint8Array; signature: SignatureFile }> {
    const response = await hubFetch(
      this.http,
      `${this.hub}${API_PREFIX}/models/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}/manifest`,
      { headers: this.headers() },
      `manifest of ${name}@${version}`,
    );
    const body = (await response.json()) as { manifest: string; signature: SignatureFile };
    return { manifestBytes: fromBase64(body.manifest), signature: body.signature };
  }

  /**
   * Download an artifact to `partPath`, resuming from what is already there; resolves once the
   * whole file is present and its sha256 matches. A mismatch deletes the partial file.
   */
  async download(
    sha256: string,
    partPath: string,
    size: number,
    onProgress: (p: DownloadProgress) => void,
  ): Promise<void> {
    const have = (await stat(partPath).catch(() => undefined))?.size ?? 0;
    await assertDiskRoom(dirname(partPath), size - have);
    const hash = have > 0 ? await hashFile(partPath) : createHash('sha256');
    let offset = have;
    if (have < size) {
      const response = await hubFetch(
        this.http,
        `${this.hub}${API_PREFIX}/artifacts/${sha256}`,
        { headers: this.headers(have > 0 ? { range: `bytes=${have}-`, 'if-range': `"${sha256}"` } : {}) },
        `artifact ${sha256.slice(0, 12)}`,
      );
      const resumed = response.status === 206;
      if (have > 0 && !resumed) {
        // The hub sent the whole file: start over.
        await rm(partPath, { force: true });
        return this.download(sha256, partPath, size, onProgress);
      }
      const handle = await open(partPath, have > 0 ? 'a' : 'w', 0o644);
      try {
        const body = response.body;
        if (!body) throw new AgentError('DOWNLOAD_FAILED', 'empty response body', { transient: true });
        const chunks = body[Symbol.asyncIterator]();
        let lastReport = 0;
        try {
          for (;;) {
            const next = await chunks.next().catch((cause: unknown) => {
              throw new AgentError('DOWNLOAD_FAILED', 'connection dropped during download', {
                cause,
                transient: true,
              });
            });
            if (next.done) break;
            const value = next.value as Buffer;
            await handle.write(value);
            hash.update(value);
            offset += value.byteLength;
            if (offset > size)
              throw new AgentError('DOWNLOAD_FAILED', `artifact is larger than the ${size} bytes announced`);
            if (Date.now() - lastReport > 500) {
              lastReport = Date.now();
              onProgress({ bytes: offset, total: size });
            }
          }
        } finally {
          body.destroy(); // a no-op once read to the end; frees the connection when we stop early
        }
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    onProgress({ bytes: offset, total: size });
    if (offset !== size)
      throw new AgentError('DOWNLOAD_FAILED', `download ended at ${offset} of ${size} bytes`, {
        transient: true,
      });
    const digest = hash.digest('hex');
    if (digest !== sha256) {
      await rm(partPath, { force: true });
      throw new AgentError(
        'ARTIFACT_HASH_MISMATCH',
        `downloaded bytes hash to ${digest}, expected ${sha256}`,
        { transient: true },
      );
    }
  }
}
