/** Artifacts by sha256, with ETag and single-range requests so agents can resume downloads. */
import { Readable } from 'node:stream';
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
      const stream = await ctx.artifacts.read(sha256, range);
      const body = Readable.toWeb(stream) as ReadableStream;
      if (range) {
        return c.body(body, 206, {
          ...headers,
          'Content-Range': `bytes ${range.start}-${range.end}/${stat.sizeBytes}`,
          'Content-Length': String(range.end - range.start + 1),
        });
      }
      return c.body(body, 200, { ...headers, 'Content-Length': String(stat.sizeBytes) });
    },
  );
}
