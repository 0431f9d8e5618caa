/** A small typed client for the hub API, used by the CLI commands. Errors become EdgefleetErrors. */
import {
  API_PREFIX,
  type ApiErrorBody,
  EdgefleetError,
  parseTargetSelector,
  type TargetSelector,
} from '@edgefleet/protocol';
import { type CommandContext, optionalString, UsageError } from './command.ts';

export interface HubClient {
  baseUrl: string;
  request<T>(
    method: string,
    path: string,
    body?: unknown,
    init?: { headers?: Record<string, string>; rawBody?: BodyInit },
  ): Promise<T>;
}

/** `--hub`/`--token`, falling back to EDGEFLEET_HUB / EDGEFLEET_TOKEN. */
export function hubOptions() {
  return { hub: { type: 'string' }, token: { type: 'string' } } as const;
}

export function hubClient(ctx: CommandContext): HubClient {
  const hub =
    (typeof ctx.values.hub === 'string' ? ctx.values.hub : undefined) ??
    process.env.EDGEFLEET_HUB ??
    'http://localhost:8080';
  const token =
    (typeof ctx.values.token === 'string' ? ctx.values.token : undefined) ?? process.env.EDGEFLEET_TOKEN;
  if (!token)
    throw new UsageError(
      'no API token: pass --token or set EDGEFLEET_TOKEN (the hub wrote one to edgefleet-data/admin-token on first start)',
    );
  const baseUrl = hub.replace(/\/+$/, '');
  return {
    baseUrl,
    async request<T>(
      method: string,
      path: string,
      body?: unknown,
      init: { headers?: Record<string, string>; rawBody?: BodyInit } = {},
    ) {
      let response: Response;
      try {
        response = await fetch(`${baseUrl}${API_PREFIX}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
            ...init.headers,
          },
          body: init.rawBody ?? (body !== undefined ? JSON.stringify(body) : undefined),
          ...(init.rawBody instanceof ReadableStream ? { duplex: 'half' } : {}),
        } as RequestInit);
      } catch (cause) {
        throw new EdgefleetError(
          'HUB_UNREACHABLE',
          `cannot reach the hub at ${baseUrl} (is it running? set --hub or EDGEFLEET_HUB)`,
          { cause },
        );
      }
      const text = await response.text();
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (!response.ok) {
        const error = (json as ApiErrorBody | undefined)?.error;
        throw new EdgefleetError(
          error?.code ?? `HTTP_${response.status}`,
          error?.message ?? `hub answered ${response.status} ${response.statusText}`,
          {
            details: {
              status: response.status,
              ...(error?.field !== undefined ? { field: error.field } : {}),
            },
          },
        );
      }
      return json as T;
    },
  };
}

/** Split `NAME@VERSION`. */
export function parseModelRef(text: string | undefined): { model: string; version: string } {
  const at = text?.lastIndexOf('@') ?? -1;
  if (!text || at <= 0 || at === text.length - 1)
    throw new UsageError(`expected NAME@VERSION, got "${text ?? ''}"`);
  return { model: text.slice(0, at), version: text.slice(at + 1) };
}

/** The devices `--to all|tag:T|device:ID|profile:P` selects (required). */
export function requireTarget(ctx: CommandContext): TargetSelector {
  const text = optionalString(ctx, 'to');
  if (!text) throw new UsageError('--to is required (all, tag:T, device:ID or profile:P)');
  try {
    return parseTargetSelector(text);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}
