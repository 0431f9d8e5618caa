/**
 * The browser-fleet routes (packages/protocol/src/browser.ts) on a real in-process hub: enrollment
 * with an enrollment token, stats windows deduped by seq into the same store as MQTT stats,
 * reported state that marks the device online, a device posting only for itself, 400s naming the
 * field; and the SDK files the hub serves (/sdk/edgefleet.js, its engines, /try).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BrowserEnrollRequest,
  type BrowserEnrollResponse,
  browserEnrollResponse,
  type StatsMessage,
  statsIngestResponse,
} from '@edgefleet/protocol';
import fc from 'fast-check';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdkAssets, serveSdk } from '../src/sdk-assets.ts';
import { enrollDevice, startTestHub, type TestHub } from './helpers.ts';

type ErrorBody = { error: { code: string; message: string; field?: string } };

const facts = (): BrowserEnrollRequest['facts'] => ({
  arch: 'wasm32',
  platform: 'browser',
  cpuCores: 8,
  accelerators: [],
  agentVersion: 'edgefleet-web/0.1.0',
  userAgent: 'Mozilla/5.0 (X11; Linux x86_64) test',
  webgpu: { available: false, reason: 'navigator.gpu is missing', features: [] },
  crossOriginIsolated: false,
});

const windowAt = (seq: number, requests = 3) => ({
  seq,
  model: 'mlp',
  version: '1.1.0',
  start: new Date(Date.UTC(2026, 0, 1, 0, seq)).toISOString(),
  end: new Date(Date.UTC(2026, 0, 1, 0, seq + 1)).toISOString(),
  window: { requests, errors: 0 },
});

const reported = (version = '1.1.0') => ({
  desiredRevision: null,
  ts: new Date().toISOString(),
  agentVersion: 'edgefleet-web/0.1.0',
  profile: 'browser-wasm',
  models: {
    mlp: {
      active: {
        name: 'mlp',
        version,
        sha256: 'ab'.repeat(32),
        target: 'wasm',
        runtime: 'onnxruntime-web/wasm',
        since: new Date().toISOString(),
      },
      previous: null,
      deployment: null,
    },
  },
  runtimes: [{ name: 'onnxruntime-web/webgpu', available: false, reason: 'navigator.gpu is missing' }],
});

let t: TestHub;

async function enrollBrowser(t: TestHub, body: Partial<BrowserEnrollRequest> = {}) {
  const token = (await t.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', { uses: 1 })).body.token;
  return t.api<BrowserEnrollResponse>(
    'POST',
    '/api/v1/browser/enroll',
    { token, profile: 'browser-wasm', facts: facts(), ...body },
    '',
  );
}

describe('browser-fleet routes', () => {
  let browser: BrowserEnrollResponse;
  let other: BrowserEnrollResponse;

  beforeAll(async () => {
    t = await startTestHub();
    const first = await enrollBrowser(t, { name: 'kiosk-3' });
    expect(first.status).toBe(201);
    browser = browserEnrollResponse.parse(first.body);
    other = browserEnrollResponse.parse((await enrollBrowser(t, { profile: 'browser-webgpu' })).body);
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('enrolls a browser with an enrollment token: its own device secret, the hub keys, its profile', async () => {
    expect(browser).toMatchObject({ name: 'kiosk-3', profile: 'browser-wasm' });
    expect(browser.deviceId).toMatch(/^kiosk-3-[0-9a-f]{8}$/);
    expect(browser.secret).toMatch(/^efd_/);
    const keys = (await t.api<{ hubKey: { keyId: string; publicKey: string } }>('GET', '/api/v1/keys')).body;
    expect(browser.trustedKeys).toContainEqual(keys.hubKey);
    // Without a name a browser still gets a readable one.
    expect(other.name).toBe(other.deviceId);
    expect(other.deviceId).toMatch(/^browser-[0-9a-f]{8}$/);
    const me = await t.api('GET', '/api/v1/me', undefined, browser.secret);
    expect(me.body).toEqual({ kind: 'device', role: 'device', deviceId: browser.deviceId });
  });

  it('shows the browser in GET /devices with its profile and browser facts', async () => {
    const { devices } = (
      await t.api<{ devices: { id: string; profile: string; facts: Record<string, unknown> }[] }>(
        'GET',
        '/api/v1/devices',
      )
    ).body;
    expect(devices.find((d) => d.id === browser.deviceId)).toMatchObject({
      name: 'kiosk-3',
      profile: 'browser-wasm',
      facts: { platform: 'browser', arch: 'wasm32', webgpu: { available: false } },
    });
    expect(devices.find((d) => d.id === other.deviceId)?.profile).toBe('browser-webgpu');
  });

  it('consumes the enrollment token like agent enrollment does', async () => {
    const token = (await t.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', { uses: 1 })).body
      .token;
    const body = { token, profile: 'browser-wasm', facts: facts() };
    expect((await t.api('POST', '/api/v1/browser/enroll', body, '')).status).toBe(201);
    const again = await t.api<ErrorBody>('POST', '/api/v1/browser/enroll', body, '');
    expect(again.status).toBe(401);
    expect(again.body.error.message).toMatch(/used up/);
    // An API token is not an enrollment token: a mix-up (403, not counted as a guess), said so.
    const viewer = (await t.api<{ token: string }>('POST', '/api/v1/tokens', { role: 'viewer', name: 'v' }))
      .body.token;
    const wrongKind = await t.api<ErrorBody>(
      'POST',
      '/api/v1/browser/enroll',
      { ...body, token: viewer },
      '',
    );
    expect(wrongKind.status).toBe(403);
    expect(wrongKind.body.error.message).toMatch(/API token cannot enroll/);
  });

  it('answers bad enrollment bodies with 400 naming the field', async () => {
    const bad = async (body: Record<string, unknown>) =>
      (await enrollBrowser(t, body as Partial<BrowserEnrollRequest>)) as unknown as {
        status: number;
        body: ErrorBody;
      };
    const profile = await bad({ profile: 'raspberry-pi-5' });
    expect(profile.status).toBe(400);
    expect(profile.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'profile' });
    const { webgpu: _, ...noWebgpu } = facts();
    expect((await bad({ facts: noWebgpu as never })).body.error.field).toBe('facts.webgpu');
    expect((await bad({ facts: { ...facts(), platform: 'linux' } as never })).body.error.field).toBe(
      'facts.platform',
    );
  });

  it('stores stats windows where MQTT stats go, counting duplicates by seq', async () => {
    const post = (message: StatsMessage, secret = browser.secret) =>
      t.api<unknown>('POST', `/api/v1/devices/${browser.deviceId}/stats`, message, secret);
    const first = await post({ windows: [windowAt(1), windowAt(2)] });
    expect(first.status).toBe(200);
    expect(statsIngestResponse.parse(first.body)).toEqual({ accepted: 2, duplicates: 0 });
    // A resend after a lost response: seq 2 is a duplicate, seq 3 is new.
    const second = await post({ windows: [windowAt(2, 99), windowAt(3)] });
    expect(second.body).toEqual({ accepted: 1, duplicates: 1 });
    const stored = await t.hub.ctx.store.stats.list('mlp', '1.1.0', { deviceId: browser.deviceId });
    expect(stored.map((w) => w.seq)).toEqual([1, 2, 3]);
    // The duplicate did not overwrite what was stored first.
    expect(stored[1]?.window).toEqual({ requests: 3, errors: 0 });
    // The other browser's seq 1 is its own.
    const theirs = await t.api(
      'POST',
      `/api/v1/devices/${other.deviceId}/stats`,
      { windows: [windowAt(1)] },
      other.secret,
    );
    expect(theirs.body).toEqual({ accepted: 1, duplicates: 0 });
  });

  it('refuses a device posting for another device (403), other roles (403) and no token (401)', async () => {
    const path = `/api/v1/devices/${browser.deviceId}/stats`;
    const message = { windows: [windowAt(50)] };
    const forbidden = await t.api<ErrorBody>('POST', path, message, other.secret);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.message).toContain(`may only report for itself`);
    const agent = await enrollDevice(t, 'an-agent');
    expect((await t.api('POST', path, message, agent.secret)).status).toBe(403);
    expect((await t.api('POST', path, message)).status).toBe(403); // admin is not the device
    expect((await t.api('POST', path, message, '')).status).toBe(401);
    const put = await t.api('PUT', `/api/v1/devices/${browser.deviceId}/reported`, reported(), other.secret);
    expect(put.status).toBe(403);
    // Nothing of that was stored.
    const stored = await t.hub.ctx.store.stats.list('mlp', '1.1.0', { deviceId: browser.deviceId });
    expect(stored.map((w) => w.seq)).not.toContain(50);
    expect(
      (await t.api<{ reported: unknown }>('GET', `/api/v1/devices/${browser.deviceId}`)).body.reported,
    ).toBe(null);
  });

  it('answers bad stats and reported bodies with 400 naming the field', async () => {
    const path = `/api/v1/devices/${browser.deviceId}/stats`;
    const cases: [unknown, string][] = [
      [{ windows: [] }, 'windows'],
      [{ windows: [{ ...windowAt(4), seq: -1 }] }, 'windows[0].seq'],
      [{ windows: [windowAt(4), { ...windowAt(5), version: 'latest' }] }, 'windows[1].version'],
      [{ windows: [{ ...windowAt(4), window: undefined }] }, 'windows[0].window'],
      [{ windows: [{ ...windowAt(4), seq: 2 ** 31 }] }, 'windows[0].seq'],
    ];
    for (const [body, field] of cases) {
      const r = await t.api<ErrorBody>('POST', path, body, browser.secret);
      expect(r.status, field).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field });
    }
    const put = await t.api<ErrorBody>(
      'PUT',
      `/api/v1/devices/${browser.deviceId}/reported`,
      { ...reported(), agentVersion: 7 },
      browser.secret,
    );
    expect(put.status).toBe(400);
    expect(put.body.error.field).toBe('agentVersion');
  });

  it('stores reported state and marks the browser online and seen', async () => {
    const fresh = browserEnrollResponse.parse((await enrollBrowser(t, { name: 'fresh' })).body);
    const before = (await t.api<{ status: string }>('GET', `/api/v1/devices/${fresh.deviceId}`)).body;
    expect(before.status).toBe('never-connected');
    const r = await t.api('PUT', `/api/v1/devices/${fresh.deviceId}/reported`, reported(), fresh.secret);
    expect(r.status).toBe(200);
    const after = (
      await t.api<{ status: string; lastSeenAt: string; agentVersion: string; reported: unknown }>(
        'GET',
        `/api/v1/devices/${fresh.deviceId}`,
      )
    ).body;
    expect(after).toMatchObject({ status: 'online', agentVersion: 'edgefleet-web/0.1.0' });
    expect(Date.parse(after.lastSeenAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(after.reported).toMatchObject({
      profile: 'browser-wasm',
      models: { mlp: { active: { version: '1.1.0', runtime: 'onnxruntime-web/wasm' } } },
    });
    const events = (
      await t.api<{ events: { kind: string }[] }>('GET', `/api/v1/devices/${fresh.deviceId}/events`)
    ).body.events;
    expect(events.map((e) => e.kind)).toEqual(expect.arrayContaining(['device.enrolled', 'device.online']));
    // A second report changes the state, not the status (no second "online" event).
    await t.api('PUT', `/api/v1/devices/${fresh.deviceId}/reported`, reported('1.2.0'), fresh.secret);
    const again = (
      await t.api<{ events: { kind: string }[] }>('GET', `/api/v1/devices/${fresh.deviceId}/events`)
    ).body.events;
    expect(again.filter((e) => e.kind === 'device.online')).toHaveLength(1);
  });

  it('cuts a revoked browser off: its next stats POST is a 401', async () => {
    const gone = browserEnrollResponse.parse((await enrollBrowser(t)).body);
    const path = `/api/v1/devices/${gone.deviceId}/stats`;
    expect((await t.api('POST', path, { windows: [windowAt(1)] }, gone.secret)).status).toBe(200);
    expect((await t.api('DELETE', `/api/v1/devices/${gone.deviceId}`)).status).toBe(200);
    expect((await t.api('POST', path, { windows: [windowAt(2)] }, gone.secret)).status).toBe(401);
  });

  it('answers random bodies on its own routes with 4xx or 200, never 5xx', async () => {
    const routes = [
      ['POST', `/api/v1/devices/${browser.deviceId}/stats`],
      ['PUT', `/api/v1/devices/${browser.deviceId}/reported`],
    ] as const;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...routes),
        fc.jsonValue({ maxDepth: 4 }),
        async ([method, path], body) => {
          const { status } = await t.api(method, path, body ?? {}, browser.secret);
          expect(status, `${method} ${path} ${JSON.stringify(body).slice(0, 200)}`).toBeLessThan(500);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('documents the routes in /openapi.json with who may call them', async () => {
    const { paths } = (
      await t.api<{ paths: Record<string, Record<string, Record<string, unknown>>> }>(
        'GET',
        '/openapi.json',
        undefined,
        '',
      )
    ).body;
    expect(paths['/api/v1/browser/enroll']?.post).toMatchObject({
      'x-edgefleet-permission': 'public',
      requestBody: { required: true },
    });
    expect(paths['/api/v1/devices/{id}/stats']?.post).toMatchObject({
      'x-edgefleet-permission': 'device',
      'x-edgefleet-own-device': 'id',
    });
    expect(paths['/api/v1/devices/{id}/reported']?.put).toMatchObject({ 'x-edgefleet-permission': 'device' });
  });
});

describe('browser enrollment rate limit', () => {
  it('counts failed browser enrollments against the same per-address limit as /enroll', async () => {
    const hub = await startTestHub();
    try {
      // Page loads that pass an API token (403) are not guesses and never use up the limit.
      const viewer = (
        await hub.api<{ token: string }>('POST', '/api/v1/tokens', { role: 'viewer', name: 'pages' })
      ).body.token;
      for (let i = 0; i < 70; i++) {
        const mixUp = { token: viewer, profile: 'browser-wasm', facts: facts() };
        expect((await hub.api('POST', '/api/v1/browser/enroll', mixUp, '')).status).toBe(403);
      }
      const guess = { token: 'efe_guessing_tokens_here', profile: 'browser-wasm', facts: facts() };
      const statuses: number[] = [];
      for (let i = 0; i < 60; i++)
        statuses.push((await hub.api('POST', '/api/v1/browser/enroll', guess, '')).status);
      expect(new Set(statuses)).toEqual(new Set([401]));
      // The 61st failure of this address is refused on either door.
      const agentBody = { token: 'efe_guessing_tokens_here', facts: { arch: 'x64', platform: 'linux' } };
      const r = await hub.api<ErrorBody>('POST', '/api/v1/enroll', agentBody, '');
      expect(r.status).toBe(429);
      expect(r.headers.get('retry-after')).toMatch(/^\d+$/);
      expect((await hub.api('POST', '/api/v1/browser/enroll', guess, '')).status).toBe(429);
    } finally {
      await hub.stop();
    }
  });
});

describe('SDK files', () => {
  let hub: TestHub;
  beforeAll(async () => {
    hub = await startTestHub();
  });
  afterAll(async () => {
    await hub?.stop();
  });

  it('serves the built SDK as JavaScript any origin may import, with revalidation', async () => {
    const r = await fetch(`${hub.hub.url}/sdk/edgefleet.js`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/javascript/);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    const source = await r.text();
    expect(source).toMatch(/export\s*\{[^}]*\bload\b/);
    const etag = r.headers.get('etag') as string;
    const again = await fetch(`${hub.hub.url}/sdk/edgefleet.js`, { headers: { 'if-none-match': etag } });
    expect(again.status).toBe(304);
    expect((await fetch(`${hub.hub.url}/sdk/edgefleet.js.map`)).headers.get('content-type')).toBe(
      'application/json',
    );
  });

  it('serves the engines next to the SDK where packages/web/src/assets.ts looks for them', async () => {
    const ort = await fetch(`${hub.hub.url}/sdk/ort/ort.wasm.min.mjs`);
    expect(ort.status).toBe(200);
    expect(ort.headers.get('content-type')).toMatch(/^text\/javascript/);
    await ort.arrayBuffer();
    const wasm = await fetch(`${hub.hub.url}/sdk/ort/ort-wasm-simd-threaded.wasm`);
    expect(wasm.headers.get('content-type')).toBe('application/wasm');
    const bytes = new Uint8Array(await wasm.arrayBuffer());
    expect([...bytes.subarray(0, 4)]).toEqual([0x00, 0x61, 0x73, 0x6d]); // "\0asm"
    expect(Number(wasm.headers.get('content-length'))).toBe(bytes.byteLength);
    const tflite = await fetch(`${hub.hub.url}/sdk/tflite/tflite_web_api_client.js`);
    expect(tflite.status).toBe(200);
    await tflite.arrayBuffer();
    expect((await fetch(`${hub.hub.url}/sdk/ort/no-such-file.mjs`)).status).toBe(404);
    // Encoded slashes reach the handler as `..` segments and must not leave the folder.
    for (const path of ['/sdk/ort/..%2f..%2fpackage.json', '/sdk/..%2fsrc%2findex.ts', '/sdk/..%5csrc'])
      expect((await fetch(`${hub.hub.url}${path}`)).status, path).toBe(404);
  });

  it('serves the try-it page at /try, importing the SDK from /sdk/', async () => {
    const r = await fetch(`${hub.hub.url}/try?model=mlp`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await r.text();
    expect(html).toContain('<base href="sdk/">');
    expect(html).toContain("import * as edgefleet from './edgefleet.js'");
    // The base makes that import the SDK route, not the dashboard's fallback.
    expect(new URL('./edgefleet.js', new URL('sdk/', `${hub.hub.url}/try`)).pathname).toBe(
      '/sdk/edgefleet.js',
    );
    const page = await fetch(`${hub.hub.url}/sdk/try.html`);
    expect(await page.text()).toContain('Run a model in this browser');
  });

  it('answers 503 saying to run the build when the SDK was not built', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'ef-sdk-missing-'));
    try {
      const real = sdkAssets();
      const app = new Hono();
      serveSdk(app, { ...real, bundle: { ...real.bundle, dir: empty } });
      for (const path of ['/sdk/edgefleet.js', '/try']) {
        const r = await app.request(path);
        expect(r.status, path).toBe(503);
        expect(((await r.json()) as ErrorBody).error.message).toContain('npm run build');
      }
      // What was installed is still served.
      expect((await app.request('/sdk/ort/ort.wasm.min.mjs')).status).toBe(200);
      const noOrt = new Hono();
      serveSdk(noOrt, { ...real, ort: { ...real.ort, dir: undefined } });
      const r = await noOrt.request('/sdk/ort/ort.wasm.min.mjs');
      expect(r.status).toBe(503);
      expect(((await r.json()) as ErrorBody).error.message).toContain('onnxruntime-web');
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
