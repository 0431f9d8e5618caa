/**
 * fetch for the agent's calls to the hub, over node:http and node:https. Node's global fetch
 * (undici) compiles its llhttp WebAssembly parser on first use and the process keeps 6–11 MB more
 * RSS from then on (measured on Node 20: a fetch after `new Response()` alone); node:http's parser
 * is built in. Enough of fetch for hub-api.ts: method, plain-object headers, a string body, an
 * abort signal (the whole exchange, body included), redirects, and the response body as a stream.
 * A pinned CA still goes through undici (`http.ts`).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import type { Fetch } from './http.ts';

const MAX_REDIRECTS = 5;

export const nodeFetch: Fetch = (url, init = {}) => send(new URL(url), init, 0);

function send(url: URL, init: RequestInit, redirects: number): Promise<Response> {
  return new Promise<Response>((resolve, reject) => {
    const request =
      url.protocol === 'https:' ? httpsRequest : url.protocol === 'http:' ? httpRequest : undefined;
    if (!request) throw new TypeError(`fetch: unsupported protocol ${url.protocol}`);
    if (init.body != null && typeof init.body !== 'string')
      throw new TypeError('fetch (node:http): only string bodies are supported');
    if (init.headers !== undefined && (init.headers instanceof Headers || Array.isArray(init.headers)))
      throw new TypeError('fetch (node:http): headers must be a plain object');
    const method = (init.method ?? 'GET').toUpperCase();
    const headers: Record<string, string> = { ...(init.headers as Record<string, string> | undefined) };
    if (typeof init.body === 'string') headers['content-length'] = String(Buffer.byteLength(init.body));
    const req = request(url, { method, headers, ...(init.signal ? { signal: init.signal } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(status) && location && init.redirect !== 'manual') {
        res.resume();
        if (redirects >= MAX_REDIRECTS) {
          reject(new TypeError(`fetch: more than ${MAX_REDIRECTS} redirects`));
          return;
        }
        // 303 (and 301/302 after a POST, as browsers and fetch do) turn into a GET without a body.
        const asGet = status === 303 || ((status === 301 || status === 302) && method === 'POST');
        const next: RequestInit = asGet ? { ...init, method: 'GET', body: null } : init;
        send(new URL(location, url), next, redirects + 1).then(resolve, reject);
        return;
      }
      resolve(toResponse(res, status, method));
    });
    req.on('error', reject);
    req.end(init.body ?? undefined);
  });
}

function toResponse(res: IncomingMessage, status: number, method: string): Response {
  const noBody = method === 'HEAD' || status === 204 || status === 304;
  if (noBody) res.resume();
  return new Response(noBody ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
    status,
    statusText: res.statusMessage ?? '',
    headers: headerPairs(res.headers),
  });
}

function headerPairs(headers: IncomingHttpHeaders): [string, string][] {
  const pairs: [string, string][] = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) pairs.push([name, v]);
  }
  return pairs;
}
