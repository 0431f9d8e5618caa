/** Artifacts by sha256, with ETag and single-range requests so agents can resume downloads. */
import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { assertMayReadArtifact } from '../access.ts';
import type { HubContext } from '../context.ts';
import { HubError, notFound } from '../errors.ts';
import { type ApiRouter, param } from './router.ts';

/** Parse `bytes=a-b`, `bytes=a-` or `bytes=-n` against a size; undefined for a header we ignore. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | undefined | 'unsatisfiable' {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // multi-range or malformed: send the whole file
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

export function artifactRoutes(router: ApiRouter, ctx: HubContext): void {
  router.define(
    {
      method: 'get',
      path: '/artifacts/:sha256',
      access: 'read-or-device',
      summary: 'Artifact bytes (Range, ETag = sha256)',
      tag: 'models',
    },
    async (c, { principal }) => {
      const sha256 = param(c, 'sha256');
      if (!/^[0-9a-f]{64}$/.test(sha256))
        throw new HubError('VALIDATION_FAILED', 'artifact id must be a lowercase hex sha256', {
          details: { field: 'sha256' },
        });
      await assertMayReadArtifact(ctx, principal, sha256);
      const stat = await ctx.artifacts.stat(sha256);
      if (!stat) throw notFound(`artifact ${sha256}`);
      const etag = `"${sha256}"`;
      const headers: Record<string, string> = {
        ETag: etag,
        'Accept-Ranges': 'bytes',
        'Content-Type': 'application/octet-stream',
        // Content-addressed: the bytes behind this URL never change.
        'Cache-Control': 'private, max-age=31536000, immutable',
      };
      if (c.req.header('if-none-match') === etag) return c.body(null, 304, headers);
      const ifRange = c.req.header('if-range');
      const range =
        ifRange === undefined || ifRange === etag
          ? parseRange(c.req.header('range'), stat.sizeBytes)
          : undefined;
      if (range === 'unsatisfiable') {
        return c.body(null, 416, { ...headers, 'Content-Range': `bytes */${stat.sizeBytes}` });
      }
      const status = range ? 206 : 200;
      const bodyHeaders: Record<string, string> = range
        ? {
            ...headers,
            'Content-Range': `bytes ${range.start}-${range.end}/${stat.sizeBytes}`,
            'Content-Length': String(range.end - range.start + 1),
          }
        : { ...headers, 'Content-Length': String(stat.sizeBytes) };
      // HEAD runs this GET handler and drops the body: open no file for it.
      if (c.req.method === 'HEAD') return c.body(null, status, bodyHeaders);
      const stream = await ctx.artifacts.read(sha256, range);
      const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
      if (!outgoing) {
        // Not under @hono/node-server (app.request in tests): a web stream through Hono.
        return c.body(Readable.toWeb(stream) as ReadableStream, status, bodyHeaders);
      }
      // Under Node, pipe the store's stream into the socket as a static server does, without the
      // web-streams hop (Readable.toWeb, then a reader in @hono/node-server). Headers go out only
      // once the store has opened the bytes, so a failure there is still an ordinary error
      // response rather than a cut-off 200.
      try {
        await firstBytes(stream);
      } catch (error) {
        stream.destroy();
        throw error;
      }
      outgoing.writeHead(status, bodyHeaders);
      pipeline(stream, outgoing).catch((error: NodeJS.ErrnoException) => {
        // pipeline closes both sides: the file is closed whether the client left or the read failed.
        if (error.code === 'ERR_STREAM_PREMATURE_CLOSE') return; // the client went away
        ctx.logger.error({ err: error, sha256 }, 'artifact download failed mid-stream');
      });
      return RESPONSE_ALREADY_SENT;
    },
  );
}

/** Resolves when the store's stream has opened (a file) or has data or its end (other stores). */
async function firstBytes(stream: Readable): Promise<void> {
  // once() rejects with the stream's 'error' (a file gone between stat and open, a store failure).
  if ('pending' in stream && stream.pending === true) await once(stream, 'ready');
  else if (stream.readableLength === 0 && !stream.readableEnded) await once(stream, 'readable');
}
