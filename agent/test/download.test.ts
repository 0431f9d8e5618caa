/**
 * Artifact downloads from the hub: resumed with an HTTP Range request after a dropped connection,
 * checked against their sha256, and refused up front when the disk cannot hold them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AgentError } from '../src/errors.ts';
import { type DownloadProgress, HubApi } from '../src/hub-api.ts';
import { type ArtifactServer, sha256Of, startArtifactServer } from './fixtures.ts';

let server: ArtifactServer;
let hub: HubApi;
let dir: string;
const blob = randomBytes(3 * 1024 * 1024 + 123);
const sha = sha256Of(blob);

beforeAll(async () => {
  server = await startArtifactServer();
  server.blobs.set(sha, blob);
  hub = new HubApi(server.url, server.secret);
  dir = await mkdtemp(join(tmpdir(), 'ef-download-'));
});
afterAll(async () => {
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => {
  server.requests.length = 0;
  server.ignoreRange = false;
});

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error as AgentError,
  );

describe('artifact download', () => {
  it('downloads the whole file and reports progress up to its size', async () => {
    const part = join(dir, 'whole.part');
    const progress: DownloadProgress[] = [];
    await hub.download(sha, part, blob.length, (p) => progress.push(p));
    expect(sha256Of(await readFile(part))).toBe(sha);
    expect(progress.at(-1)).toEqual({ bytes: blob.length, total: blob.length });
    expect(server.requests[0]?.range).toBeUndefined();
  });

  it('resumes from the partial file with a Range request after the connection drops', async () => {
    const part = join(dir, 'resume.part');
    server.cutNextAfter(1024 * 1024);
    const error = await failure(hub.download(sha, part, blob.length, () => undefined));
    expect(error).toBeInstanceOf(AgentError);
    expect(error.code).toBe('DOWNLOAD_FAILED');
    expect(error.transient).toBe(true);
    const have = (await stat(part)).size;
    expect(have).toBeGreaterThan(0);
    expect(have).toBeLessThan(blob.length);
    // What is on disk is a true prefix of the artifact.
    expect(Buffer.compare((await readFile(part)).subarray(0, have), blob.subarray(0, have))).toBe(0);

    await hub.download(sha, part, blob.length, () => undefined);
    expect(sha256Of(await readFile(part))).toBe(sha);
    const resumed = server.requests.at(-1);
    expect(resumed?.range).toBe(`bytes=${have}-`);
    expect(resumed?.sent).toBe(blob.length - have);
  });

  it('resumes a partial file left by an earlier process', async () => {
    const part = join(dir, 'earlier.part');
    await writeFile(part, blob.subarray(0, 777_777));
    await new HubApi(server.url, server.secret).download(sha, part, blob.length, () => undefined);
    expect(server.requests.at(-1)?.range).toBe('bytes=777777-');
    expect(sha256Of(await readFile(part))).toBe(sha);
  });

  it('starts over when the server ignores the Range request', async () => {
    const part = join(dir, 'norange.part');
    await writeFile(part, blob.subarray(0, 1000));
    server.ignoreRange = true;
    await hub.download(sha, part, blob.length, () => undefined);
    expect(sha256Of(await readFile(part))).toBe(sha);
  });

  it('rejects bytes whose sha256 differs and deletes the partial file', async () => {
    const part = join(dir, 'corrupt.part');
    server.corruptNext();
    const error = await failure(hub.download(sha, part, blob.length, () => undefined));
    expect(error.code).toBe('ARTIFACT_HASH_MISMATCH');
    await expect(stat(part)).rejects.toMatchObject({ code: 'ENOENT' });
    // The next attempt starts clean and succeeds.
    await hub.download(sha, part, blob.length, () => undefined);
    expect(sha256Of(await readFile(part))).toBe(sha);
  });

  it('rejects a corrupt partial file from an earlier process once the rest arrives', async () => {
    const part = join(dir, 'bad-prefix.part');
    const prefix = Buffer.from(blob.subarray(0, 5000));
    prefix[10] = (prefix[10] ?? 0) ^ 1;
    await writeFile(part, prefix);
    const error = await failure(hub.download(sha, part, blob.length, () => undefined));
    expect(error.code).toBe('ARTIFACT_HASH_MISMATCH');
    await expect(stat(part)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a download the disk cannot hold, before asking the hub for it', async () => {
    const part = join(dir, 'huge.part');
    const tooBig = 1024 ** 5; // a petabyte
    const error = await failure(hub.download(sha, part, tooBig, () => undefined));
    expect(error.code).toBe('DISK_FULL');
    expect(error.transient).toBe(true);
    expect(server.requests).toHaveLength(0);
    await expect(stat(part)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('fails when the file is longer than announced', async () => {
    const part = join(dir, 'long.part');
    const error = await failure(hub.download(sha, part, blob.length - 10, () => undefined));
    expect(error.code).toBe('DOWNLOAD_FAILED');
  });

  it('reports a missing artifact as refused by the hub, not retried', async () => {
    const error = await failure(hub.download('0'.repeat(64), join(dir, 'missing.part'), 10, () => undefined));
    expect(error.code).toBe('HUB_REFUSED');
    expect(error.transient).toBe(false);
    expect(error.message).toContain('404');
  });

  it('reports a wrong device secret as refused', async () => {
    const stranger = new HubApi(server.url, 'efd_wrong');
    const error = await failure(stranger.download(sha, join(dir, 'x.part'), blob.length, () => undefined));
    expect(error.code).toBe('HUB_REFUSED');
    expect(error.message).toContain('401');
  });

  it('reports an unreachable hub as transient', async () => {
    const gone = await startArtifactServer();
    await gone.close();
    const error = await failure(
      new HubApi(gone.url, gone.secret).download(sha, join(dir, 'y.part'), blob.length, () => undefined),
    );
    expect(error.code).toBe('HUB_UNREACHABLE');
    expect(error.transient).toBe(true);
  });
});
