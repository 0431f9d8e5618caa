/**
 * Route definitions with their permission and request schema in one place: the same table drives
 * the role check on every route, body validation (400 naming the field) and /openapi.json.
 */
import { type Permission, toValidationError } from '@edgefleet/protocol';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { can, type Principal } from '../auth/principal.ts';
import type { HubContext } from '../context.ts';
import { HubError } from '../errors.ts';

export type Access = Permission | 'public' | 'read-or-device';
export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface RouteSpec<B extends z.ZodType | undefined = undefined> {
  method: Method;
  /** Hono path under /api/v1, e.g. `/models/:name`. */
  path: string;
  access: Access;
  summary: string;
  tag: string;
  body?: B;
  /** Set for routes whose body is raw bytes (uploads). */
  rawBody?: string;
  /**
   * A device's own route: the path parameter that must equal the calling device's id (403
   * otherwise), checked before the body is read.
   */
  ownDeviceParam?: string;
}

export type HubEnv = { Variables: { principal: Principal | undefined } };

export interface RouteInput<B> {
  body: B;
  principal: Principal | undefined;
}

function checkAccess(access: Access, principal: Principal | undefined): void {
  if (access === 'public') return;
  if (!principal)
    throw new HubError('UNAUTHORIZED', 'missing or invalid bearer token (Authorization: Bearer <token>)');
  if (access === 'read-or-device' && (can(principal, 'read') || principal.kind === 'device')) return;
  if (access !== 'read-or-device' && can(principal, access)) return;
  throw new HubError(
    'FORBIDDEN',
    `this needs the "${access}" permission, which a ${principal.role} token does not have`,
  );
}

function checkOwnDevice(principal: Principal | undefined, deviceId: string | undefined): void {
  if (principal?.kind === 'device' && principal.deviceId === deviceId) return;
  throw new HubError(
    'FORBIDDEN',
    principal?.kind === 'device'
      ? `device ${principal.deviceId} may only report for itself, not for ${deviceId}`
      : 'only the device itself may use this route (its bearer secret)',
  );
}

async function readJsonBody(c: Context, schema: z.ZodType): Promise<unknown> {
  let value: unknown;
  const text = await c.req.text();
  try {
    value = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new HubError('VALIDATION_FAILED', 'request body is not valid JSON', { details: { field: '' } });
  }
  const result = schema.safeParse(value);
  if (!result.success) throw toValidationError(result.error, 'request');
  return result.data;
}

type Handler<B> = (
  c: Context<HubEnv>,
  input: RouteInput<B extends z.ZodType ? z.infer<B> : undefined>,
) => Response | Promise<Response>;

/** A Hono app for /api/v1 plus the table of its routes (for /openapi.json). */
export function createApiRouter() {
  const app = new Hono<HubEnv>();
  const table: RouteSpec<z.ZodType | undefined>[] = [];
  return {
    app,
    table,
    /** Register a route: role check, then body validation, then the handler. */
    define<B extends z.ZodType | undefined = undefined>(spec: RouteSpec<B>, handler: Handler<B>): void {
      table.push(spec as RouteSpec<z.ZodType | undefined>);
      app.on(spec.method.toUpperCase(), spec.path, async (c) => {
        const principal = c.get('principal');
        checkAccess(spec.access, principal);
        if (spec.ownDeviceParam) checkOwnDevice(principal, c.req.param(spec.ownDeviceParam));
        const body = spec.body ? await readJsonBody(c, spec.body) : undefined;
        return handler(c, { body: body as never, principal });
      });
    },
  };
}

export type ApiRouter = ReturnType<typeof createApiRouter>;

/** Parse a query parameter as a bounded integer (400 naming it otherwise). */
export function queryInt(
  c: Context,
  name: string,
  fallback: number,
  min = 0,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = c.req.query(name);
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new HubError('VALIDATION_FAILED', `invalid query: ${name}: expected an integer in ${min}..${max}`, {
      details: { field: name },
    });
  }
  return n;
}

/** The OpenAPI 3.1 document for every defined route. */
export function openApiDocument(
  table: readonly RouteSpec<z.ZodType | undefined>[],
  version: string,
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of table) {
    const path = `/api/v1${spec.path}`.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const params = [...spec.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    const op: Record<string, unknown> = {
      summary: spec.summary,
      tags: [spec.tag],
      parameters: params,
      security: spec.access === 'public' ? [] : [{ bearer: [] }],
      'x-edgefleet-permission': spec.access,
      ...(spec.ownDeviceParam ? { 'x-edgefleet-own-device': spec.ownDeviceParam } : {}),
      responses: { default: { description: 'JSON; errors are {error:{code,message,field?}}' } },
    };
    if (spec.body)
      op.requestBody = {
        required: true,
        content: {
          'application/json': { schema: z.toJSONSchema(spec.body, { io: 'input', unrepresentable: 'any' }) },
        },
      };
    if (spec.rawBody)
      op.requestBody = {
        required: true,
        content: { [spec.rawBody]: { schema: { type: 'string', format: 'binary' } } },
      };
    paths[path] = { ...paths[path], [spec.method]: op };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'edgefleet hub API', version },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}

/** A path parameter (always present for a matched route; typed as string). */
export function param(c: Context, name: string): string {
  const value = c.req.param(name);
  if (value === undefined) throw new HubError('BAD_REQUEST', `missing path parameter ${name}`);
  return value;
}

/** The hub's ceiling on uploaded bodies (models, agent releases): 413 with the limit over it. */
export function uploadLimit(ctx: HubContext): MiddlewareHandler {
  return bodyLimit({
    maxSize: ctx.settings.maxUploadBytes,
    onError: () => {
      throw new HubError(
        'PAYLOAD_TOO_LARGE',
        `upload is larger than the hub's limit of ${ctx.settings.maxUploadBytes} bytes`,
      );
    },
  });
}
