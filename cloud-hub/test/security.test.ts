/** Who may do what: every route's role check, revocation, enrollment rate limits, secrets kept out of logs, fuzzed inputs. */
import { Writable } from 'node:stream';
import fc from 'fast-check';
import mqtt from 'mqtt';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/services.ts';
import { createDeviceMessageHandler } from '../src/ingest/device-messages.ts';
import { enrollDevice, startTestHub, type TestHub } from './helpers.ts';

const logLines: string[] = [];
const capture = new Writable({
  write(chunk, _encoding, done) {
    logLines.push(String(chunk));
    done();
  },
});

let t: TestHub;
let viewer: string;
let operator: string;
let device: { deviceId: string; secret: string };

beforeAll(async () => {
  t = await startTestHub({ logger: pino({ level: 'debug' }, capture) });
  viewer = (await t.api<{ token: string }>('POST', '/api/v1/tokens', { role: 'viewer', name: 'v' })).body
    .token;
  operator = (await t.api<{ token: string }>('POST', '/api/v1/tokens', { role: 'operator', name: 'o' })).body
    .token;
  device = await enrollDevice(t, 'sec-device');
});
afterAll(async () => {
  await t?.stop();
});

interface Operation {
  'x-edgefleet-permission': string;
}

async function routes(): Promise<{ method: string; path: string; permission: string }[]> {
  const doc = (
    await t.api<{ paths: Record<string, Record<string, Operation>> }>('GET', '/openapi.json', undefined, '')
  ).body;
  return Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({
      method: method.toUpperCase(),
      path: path.replace(/\{[^}]+\}/g, 'x'),
      permission: op['x-edgefleet-permission'],
    })),
  );
}

describe('role checks on every route', () => {
  it('covers the whole API', async () => {
    expect((await routes()).length).toBeGreaterThan(25);
  });

  it('refuses every non-public route without a token (401), and with a revoked one', async () => {
    const revoked = (
      await t.api<{ id: string; token: string }>('POST', '/api/v1/tokens', { role: 'admin', name: 'gone' })
    ).body;
    expect((await t.api('DELETE', `/api/v1/tokens/${revoked.id}`)).status).toBe(200);
    for (const r of await routes()) {
      if (r.permission === 'public') continue;
      for (const token of ['', 'efa_not_a_token', revoked.token]) {
        expect(
          (await t.api(r.method, r.path, r.method === 'GET' ? undefined : {}, token)).status,
          `${r.method} ${r.path}`,
        ).toBe(401);
      }
    }
  });

  it('gives each role exactly its permissions (403 otherwise)', async () => {
    const allowed: Record<string, string[]> = {
      viewer: ['read', 'read-or-device'],
      operator: ['read', 'read-or-device', 'write'],
      // `device` routes also check the path is the caller's own id: for `x` that is a 403 too.
      device: ['read-or-device', 'device'],
    };
    for (const r of await routes()) {
      if (r.permission === 'public' || r.path === '/api/v1/live') continue;
      for (const [role, token] of [
        ['viewer', viewer],
        ['operator', operator],
        ['device', device.secret],
      ] as const) {
        const { status } = await t.api(r.method, r.path, r.method === 'GET' ? undefined : {}, token);
        if (allowed[role]?.includes(r.permission))
          expect(status, `${role} ${r.method} ${r.path}`).not.toBe(401);
        else expect(status, `${role} ${r.method} ${r.path}`).toBe(403);
      }
    }
  });
});

describe('revocation and limits', () => {
  it('cuts a revoked device off at once: MQTT session closed, reconnects and API calls refused', async () => {
    const d = await enrollDevice(t, 'to-revoke');
    const url = `mqtt://127.0.0.1:${t.hub.mqttPort}`;
    const client = await mqtt.connectAsync(url, {
      clientId: d.deviceId,
      username: d.deviceId,
      password: d.secret,
      reconnectPeriod: 0,
    });
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    expect((await t.api('DELETE', `/api/v1/devices/${d.deviceId}`, undefined, operator)).status).toBe(200);
    await closed;
    await expect(
      mqtt.connectAsync(url, {
        clientId: d.deviceId,
        username: d.deviceId,
        password: d.secret,
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow();
    expect((await t.api('GET', '/api/v1/me', undefined, d.secret)).status).toBe(401);
    client.end(true);
  });

  it('never slows down legitimate enrollments, however many come from one address', async () => {
    const token = (await t.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', { uses: 80 })).body
      .token;
    for (let i = 0; i < 80; i++) {
      const r = await t.api(
        'POST',
        '/api/v1/enroll',
        { token, name: `factory-${i}`, facts: { arch: 'arm64', platform: 'linux' } },
        '',
      );
      expect(r.status).toBe(201);
    }
  });

  it('rate-limits failed enrollment attempts per address', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 70; i++) {
      statuses.push(
        (
          await t.api(
            'POST',
            '/api/v1/enroll',
            { token: 'efe_guessing_tokens_here', facts: { arch: 'x64', platform: 'linux' } },
            '',
          )
        ).status,
      );
    }
    expect(statuses.filter((s) => s === 401).length).toBeGreaterThan(0);
    expect(statuses.at(-1)).toBe(429);
  });

  it('never writes a secret to the log', async () => {
    const token = (await t.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', { uses: 1 })).body
      .token;
    const enrolled = (
      await t.api<{ secret: string }>(
        'POST',
        '/api/v1/enroll',
        { token, name: 'quiet', facts: { arch: 'x64', platform: 'linux' } },
        '',
      )
    ).body;
    const api = (
      await t.api<{ token: string }>('POST', '/api/v1/tokens', { role: 'viewer', name: 'logcheck' })
    ).body.token;
    await t.api('GET', '/api/v1/devices', undefined, api);
    await t.api('GET', '/api/v1/devices', undefined, 'efa_wrong_secret_value');
    await waitFor(() => logLines.length > 0, 'log lines');
    const log = logLines.join('');
    for (const secret of [token, enrolled.secret, api, t.adminToken, device.secret, 'efa_wrong_secret_value'])
      expect(log).not.toContain(secret);
  });
});

describe('hostile input', () => {
  it('answers random JSON bodies on every write route with 4xx, never 5xx', async () => {
    const writes = (await routes()).filter(
      (r) =>
        r.method !== 'GET' &&
        r.permission !== 'public' &&
        !r.path.includes('/versions/x') &&
        !r.path.includes('/tokens'),
    );
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...writes), fc.jsonValue({ maxDepth: 3 }), async (route, body) => {
        const { status } = await t.api(route.method, route.path, body ?? {});
        expect(status, `${route.method} ${route.path} ${JSON.stringify(body).slice(0, 200)}`).toBeLessThan(
          500,
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('survives random device messages on any topic: logged, counted, never thrown', async () => {
    const handler = createDeviceMessageHandler(
      t.hub.ctx,
      { resolve: () => undefined, send: async () => ({ id: '', ok: true, result: null }) },
      { onTransfers: async () => undefined, stop: () => undefined },
    );
    const kinds = fc.constantFrom(
      'status',
      'reported',
      'telemetry',
      'stats',
      'cmd/x/reply',
      'desired',
      'chunks/ab',
      'nope',
    );
    await fc.assert(
      fc.asyncProperty(
        kinds,
        fc.oneof(
          fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)),
          fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
        ),
        async (kind, payload) => {
          await handler(`edgefleet/v1/devices/${device.deviceId}/${kind}`, payload, device.deviceId);
        },
      ),
      { numRuns: 2000 },
    );
    await handler.drain();
  });
});
