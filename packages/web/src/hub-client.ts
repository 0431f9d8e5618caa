/**
 * The hub's HTTP API as the browser uses it. Every failure becomes a WebError: unreachable hub,
 * refused request (with the hub's own error code and message), or a body that is not what the
 * contract says.
 */
import {
  API_PREFIX,
  type BrowserEnrollRequest,
  type BrowserEnrollResponse,
  browserEnrollResponse,
  browserRoutes,
  type ReportedState,
  type StatsMessage,
  type TrustedKey,
  trustedKey,
} from '@edgefleet/protocol';
import { z } from 'zod';
import { WebError } from './errors.ts';

export interface HubClientOptions {
  /** The hub's base URL, e.g. https://hub.example.com (a path prefix is kept). */
  hub: string;
  fetch?: typeof fetch;
}

const signedManifest = z.object({ manifest: z.string().min(1), signature: z.unknown() });
const modelListing = z.object({
  name: z.string(),
  versions: z.array(z.object({ version: z.string() })),
});
const keyListing = z.object({ hubKey: trustedKey, keys: z.array(trustedKey.passthrough()) });

export type HubClient = ReturnType<typeof hubClient>;

/** A client for the routes the SDK needs; `token` is passed per call (API token or device secret). */
export function hubClient(options: HubClientOptions) {
  const base = options.hub.replace(/\/+$/, '') + API_PREFIX;
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));

  async function call(
    method: string,
    path: string,
    token: string | undefined,
    init: { json?: unknown; keepalive?: boolean } = {},
  ): Promise<Response> {
    let response: Response;
    try {
      response = await doFetch(base + path, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(init.json !== undefined ? { body: JSON.stringify(init.json) } : {}),
        ...(init.keepalive ? { keepalive: true } : {}),
      });
    } catch (cause) {
      throw new WebError('WEB_HUB_UNREACHABLE', `cannot reach the hub at ${options.hub}: ${String(cause)}`, {
        cause,
      });
    }
    if (!response.ok) throw await refusal(method, path, response);
    return response;
  }

  async function json<T>(schema: z.ZodType<T>, response: Response, what: string): Promise<T> {
    const parsed = schema.safeParse(await response.json().catch(() => undefined));
    if (!parsed.success)
      throw new WebError('WEB_HUB_REFUSED', `the hub answered ${what} with an unexpected body`, {
        details: { issues: parsed.error.issues.slice(0, 3) },
      });
    return parsed.data;
  }

  return {
    /** The model's versions (oldest first, as the hub lists them). */
    async versions(model: string, token: string): Promise<string[]> {
      const r = await call('GET', `/models/${encodeURIComponent(model)}`, token);
      return (await json(modelListing, r, `GET /models/${model}`)).versions.map((v) => v.version);
    },
    /** The signed manifest: the exact manifest.json bytes and the signature file. */
    async manifest(model: string, version: string, token: string) {
      const path = `/models/${encodeURIComponent(model)}/versions/${encodeURIComponent(version)}/manifest`;
      const body = await json(signedManifest, await call('GET', path, token), `GET ${path}`);
      return { manifestBytes: base64Bytes(body.manifest), signature: body.signature };
    },
    /** Raw bytes of a content-addressed file (verified by the caller). */
    async artifact(sha256: string, token: string): Promise<Uint8Array> {
      const r = await call('GET', `/artifacts/${sha256}`, token);
      return new Uint8Array(await r.arrayBuffer());
    },
    /** The hub's key and registered publisher keys. */
    async keys(token: string): Promise<TrustedKey[]> {
      const body = await json(keyListing, await call('GET', '/keys', token), 'GET /keys');
      return [body.hubKey, ...body.keys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey }))];
    },
    async enrollBrowser(request: BrowserEnrollRequest): Promise<BrowserEnrollResponse> {
      const r = await call('POST', browserRoutes.enroll, undefined, { json: request });
      return json(browserEnrollResponse, r, `POST ${browserRoutes.enroll}`);
    },
    async postStats(
      deviceId: string,
      message: StatsMessage,
      secret: string,
      keepalive = false,
    ): Promise<void> {
      await call('POST', browserRoutes.stats(deviceId), secret, { json: message, keepalive });
    },
    async putReported(deviceId: string, state: ReportedState, secret: string): Promise<void> {
      await call('PUT', browserRoutes.reported(deviceId), secret, { json: state });
    },
  };
}

async function refusal(method: string, path: string, response: Response): Promise<WebError> {
  const text = await response.text().catch(() => '');
  let code: string | undefined;
  let message = text.slice(0, 300);
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    code = body.error?.code;
    message = body.error?.message ?? message;
  } catch {
    // not a JSON error body
  }
  const notFound = response.status === 404 && /^\/models\//.test(path) && code !== undefined;
  return new WebError(
    notFound ? 'WEB_MODEL_NOT_FOUND' : 'WEB_HUB_REFUSED',
    `${method} ${API_PREFIX}${path}: ${response.status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`,
    { details: { status: response.status, ...(code ? { hubCode: code } : {}) } },
  );
}

function base64Bytes(text: string): Uint8Array {
  try {
    const binary = atob(text);
    return Uint8Array.from(binary, (c) => c.charCodeAt(0));
  } catch (cause) {
    throw new WebError('WEB_MANIFEST_INVALID', 'the hub sent a manifest that is not base64', { cause });
  }
}
