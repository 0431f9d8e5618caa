/**
 * HTTP from the agent to the hub, over node:http and node:https, with a pinned CA when the hub
 * uses a private certificate (`--ca`). Not fetch: Node's fetch is undici, whose classes and
 * WebAssembly parser an idle agent would carry for good (6–11 MB of RSS measured on Node 20, see
 * docs/agent-memory.md), and whose abort signal covers the whole exchange, so a fixed timeout
 * would cut a large download on a slow link. Here the timeout is for silence: no byte from the
 * hub for `idleTimeoutMs`, whether waiting for the answer or in the middle of the body.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';

export interface HubRequest {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface HubResponse {
  status: number;
  ok: boolean;
  /** A header's value; repeated headers joined with ", ". */
  header(name: string): string | undefined;
  /** The whole body as text or JSON; rejects when the connection drops first. */
  text(): Promise<string>;
  json(): Promise<unknown>;
  /** The body as a stream (null for HEAD, 204 and 304); errors when the connection drops. */
  body: Readable | null;
}

export type HubHttp = (url: string, init?: HubRequest) => Promise<HubResponse>;

export interface HubHttpOptions {
  /** PEM of a CA to trust for https, besides the system's. */
  ca?: string;
  /** Give up after this long without a byte from the hub (default 60 s). */
  idleTimeoutMs?: number;
}

const MAX_REDIRECTS = 5;

export function hubHttp(options: HubHttpOptions = {}): HubHttp {
  const idle = options.idleTimeoutMs ?? 60_000;
  const send = (url: URL, init: HubRequest, redirects: number): Promise<HubResponse> =>
    new Promise((resolve, reject) => {
      const https = url.protocol === 'https:';
      if (!https && url.protocol !== 'http:') throw new TypeError(`unsupported protocol ${url.protocol}`);
      const method = (init.method ?? 'GET').toUpperCase();
      const headers = { ...init.headers };
      if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
      const request = https ? httpsRequest : httpRequest;
      let answer: IncomingMessage | undefined;
      const req = request(
        url,
        { method, headers, ...(https && options.ca ? { ca: options.ca } : {}) },
        (res) => {
          answer = res;
          const status = res.statusCode ?? 0;
          const location = res.headers.location;
          if ([301, 302, 303, 307, 308].includes(status) && location) {
            res.resume();
            if (redirects >= MAX_REDIRECTS) return reject(new Error(`more than ${MAX_REDIRECTS} redirects`));
            // 303 (and 301/302 after a POST, as browsers do) continue as a GET without a body.
            const asGet = status === 303 || ((status === 301 || status === 302) && method === 'POST');
            const next: HubRequest = asGet ? { ...init, method: 'GET', body: undefined } : init;
            send(new URL(location, url), next, redirects + 1).then(resolve, reject);
            return;
          }
          resolve(toResponse(res, status, method));
        },
      );
      // Socket inactivity, before and after the answer's head: the body stream errors with it.
      req.setTimeout(idle, () => {
        const silent = new Error(`no answer from the hub for ${idle / 1000} s`);
        if (answer) answer.destroy(silent);
        else req.destroy(silent);
      });
      req.on('error', reject);
      req.end(init.body);
    });
  return (url, init = {}) => send(new URL(url), init, 0);
}

function toResponse(res: IncomingMessage, status: number, method: string): HubResponse {
  const noBody = method === 'HEAD' || status === 204 || status === 304;
  if (noBody) res.resume();
  const text = async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };
  return {
    status,
    ok: status >= 200 && status < 300,
    header: (name) => joined(res.headers, name.toLowerCase()),
    text,
    json: async () => JSON.parse(await text()),
    body: noBody ? null : res,
  };
}

function joined(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
