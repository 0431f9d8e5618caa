/**
 * `load({hub, model, token})` in Node against a real hub: version choice, keys, typed errors; and
 * the hub's browser-fleet routes (packages/protocol/src/browser.ts): enroll once, stats windows
 * with increasing seq, reported state, re-enroll after revocation. Every request the SDK sends on
 * those routes, and every answer, is checked against the protocol schemas, and the hub's own view
 * (devices, duplicates by seq) is checked through its API.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mlpModel } from '@edgefleet/converters';
import {
  browserEnrollRequest,
  browserEnrollResponse,
  reportedState,
  type StatsMessage,
  statsIngestResponse,
  statsMessage,
} from '@edgefleet/protocol';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Capabilities, type LoadOptions, load, memoryArtifactCache } from '../packages/web/src/index.ts';
import { launchBrowser, newPage } from './support/browser.ts';
import { type HubProc, hubApi, spawnHub } from './support/processes.ts';
import { requireService } from './support/services.ts';

const caps: Capabilities = {
  webgpu: { available: false, reason: 'Node', features: [] },
  cacheApi: false,
  crossOriginIsolated: false,
  hardwareConcurrency: 2,
  userAgent: 'node-test',
};
const memoryStorage = () => {
  const m = new Map<string, string>();
  return {
    getItem: (k: string) => m.get(k) ?? null,
    setItem: (k: string, v: string) => void m.set(k, v),
    removeItem: (k: string) => void m.delete(k),
    keys: () => [...m.keys()],
  };
};

const chromium = await requireService('chromium');

describe('load() against a hub', () => {
  let dir: string;
  let hub: HubProc;
  let token: string;
  const base = (): Omit<LoadOptions, 'hub'> => ({
    model: 'mlp',
    token,
    runtimes: { onnx: async () => ort },
    capabilities: caps,
    cache: memoryArtifactCache(),
    storage: memoryStorage(),
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ef-sdk-hub-'));
    hub = await spawnHub({ dataDir: join(dir, 'hub') });
    const api = hubApi(hub.url, hub.adminToken);
    for (const [version, seed] of [
      ['1.0.0', 1],
      ['1.1.0', 2],
      ['2.0.0-rc.1', 3],
    ] as const)
      await api(
        'PUT',
        `/models/mlp/versions/${version}`,
        mlpModel({ inputs: 4, hidden: [8], outputs: 3, seed }),
      );
    token = (await api<{ token: string }>('POST', '/tokens', { role: 'viewer', name: 'sdk' })).token;
  }, 120_000);

  afterAll(async () => {
    await hub?.kill();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('picks the highest release, checks it against the hub key, and runs it', async () => {
    const model = await load({ ...base(), hub: hub.url });
    expect(model.version).toBe('1.1.0');
    expect(model.backend.probe).toBe('smoke-test');
    expect((await model.predict([1, 2, 3, 4])).output?.shape).toEqual([1, 3]);
    // A viewer token reads models but is no enrollment token: reporting is off, and says why.
    expect(model.reporting).toMatchObject({
      enabled: false,
      reason: expect.stringMatching(/browser enrollment failed: .*403.*use an enrollment token/),
    });
    const pinned = await load({ ...base(), hub: `${hub.url}/`, version: '2.0.0-rc.1', report: false });
    expect(pinned.version).toBe('2.0.0-rc.1');
    expect(pinned.reporting.reason).toBe('reporting turned off by the caller');
  });

  it('turns hub answers into typed errors', async () => {
    await expect(load({ ...base(), hub: hub.url, model: 'nope' })).rejects.toMatchObject({
      code: 'WEB_MODEL_NOT_FOUND',
    });
    await expect(load({ ...base(), hub: hub.url, version: '9.9.9' })).rejects.toMatchObject({
      code: 'WEB_MODEL_NOT_FOUND',
    });
    await expect(load({ ...base(), hub: hub.url, token: 'efv_not_a_token_at_all' })).rejects.toMatchObject({
      code: 'WEB_HUB_REFUSED',
      details: { status: 401 },
    });
    await expect(load({ ...base(), hub: 'http://127.0.0.1:9' })).rejects.toMatchObject({
      code: 'WEB_HUB_UNREACHABLE',
    });
    await expect(load({ ...base(), hub: '' })).rejects.toMatchObject({ code: 'WEB_OPTIONS_INVALID' });
  });

  describe('as an enrolled browser', () => {
    /** One request the SDK sent on a browser route, with the hub's answer. */
    interface Call {
      method: string;
      path: string;
      body: unknown;
      status: number;
      response: unknown;
    }
    const calls: Call[] = [];
    const browserRoute = /^\/api\/v1\/(browser\/enroll|devices\/[^/]+\/(stats|reported))$/;
    const recordingFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const path = new URL(input instanceof Request ? input.url : String(input)).pathname;
      if (browserRoute.test(path))
        calls.push({
          method: init?.method ?? 'GET',
          path,
          body: typeof init?.body === 'string' ? JSON.parse(init.body) : undefined,
          status: response.status,
          response: await response
            .clone()
            .json()
            .catch(() => undefined),
        });
      return response;
    };
    const enrolls = () =>
      calls.filter((c) => c.path === '/api/v1/browser/enroll').map((c) => browserEnrollRequest.parse(c.body));
    const statsCalls = () => calls.filter((c) => c.path.endsWith('/stats'));
    const reportedCalls = () => calls.filter((c) => c.path.endsWith('/reported'));
    const enrollmentToken = async (uses: number) =>
      (await hubApi(hub.url, hub.adminToken)<{ token: string }>('POST', '/enrollment-tokens', { uses }))
        .token;

    it('enrolls once, reports what runs, and sends numbered stats windows that continue across loads', async () => {
      const storage = memoryStorage();
      // One use only: the second load can only report because the first one's credentials were kept.
      const enrollToken = await enrollmentToken(1);
      const options = {
        ...base(),
        hub: hub.url,
        storage,
        fetch: recordingFetch,
        report: { enrollToken, name: 'kiosk-3', windowMs: 3_600_000 },
      };
      const first = await load(options);
      expect(first.reporting).toMatchObject({ enabled: true, deviceId: expect.stringMatching(/^kiosk-3-/) });
      const deviceId = (first.reporting as { deviceId: string }).deviceId;
      expect(enrolls()).toHaveLength(1);
      expect(enrolls()[0]).toMatchObject({
        token: enrollToken,
        name: 'kiosk-3',
        profile: 'browser-wasm',
        facts: { platform: 'browser' },
      });
      const enrolled = browserEnrollResponse.parse(calls[0]?.response);
      expect(calls[0]?.status).toBe(201);
      expect(enrolled).toMatchObject({ deviceId, name: 'kiosk-3', profile: 'browser-wasm' });
      // The model was verified with the keys the enrollment pinned.
      expect(enrolled.trustedKeys.length).toBeGreaterThan(0);
      await first.predict([1, 2, 3, 4]);
      await first.predict([4, 3, 2, 1]);
      expect(await first.reporting.flush()).toEqual({ sent: 1, pending: 0 });
      await first.dispose();

      const second = await load(options);
      expect(enrolls()).toHaveLength(1); // credentials came from storage
      expect(second.reporting).toMatchObject({ enabled: true, deviceId });
      await second.predict([0, 0, 0, 1]);
      await second.dispose(); // dispose flushes the last window
      const posted = statsCalls();
      expect(posted.map((c) => c.path)).toEqual([
        `/api/v1/devices/${deviceId}/stats`,
        `/api/v1/devices/${deviceId}/stats`,
      ]);
      const windows = posted.flatMap((c) => statsMessage.parse(c.body).windows);
      expect(windows.map((w) => w.seq)).toEqual([1, 2]);
      expect(windows[0]).toMatchObject({
        model: 'mlp',
        version: '1.1.0',
        window: { requests: 2, errors: 0 },
      });
      expect(windows[1]).toMatchObject({ window: { requests: 1 } });
      for (const c of posted) {
        expect(c.status).toBe(200);
        expect(statsIngestResponse.parse(c.response)).toEqual({ accepted: 1, duplicates: 0 });
      }
      await expect.poll(() => reportedCalls().length).toBe(2);
      const states = reportedCalls().map((c) => reportedState.parse(c.body));
      expect(reportedCalls().map((c) => c.status)).toEqual([200, 200]);
      expect(states[0]).toMatchObject({
        profile: 'browser-wasm',
        models: { mlp: { active: { version: '1.1.0', runtime: 'onnxruntime-web/wasm' } } },
      });

      // The hub's side: the browser is a device of the fleet, online, with what it reported.
      const api = hubApi(hub.url, hub.adminToken);
      const { devices } = await api<{
        devices: { id: string; name: string; profile: string; status: string }[];
      }>('GET', '/devices');
      expect(devices.find((d) => d.id === deviceId)).toMatchObject({
        name: 'kiosk-3',
        profile: 'browser-wasm',
        status: 'online',
        facts: { platform: 'browser', webgpu: { available: false, reason: 'Node' } },
        reported: { models: { mlp: { active: { version: '1.1.0' } } } },
      });
      // Both windows are stored under this device: sending seq 2 again is a duplicate.
      const secret = JSON.parse(storage.getItem(`edgefleet:device:${hub.url}`) as string).secret as string;
      const last = windows[1] as StatsMessage['windows'][number];
      const resend = await fetch(`${hub.url}/api/v1/devices/${deviceId}/stats`, {
        method: 'POST',
        headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ windows: [last, { ...last, seq: 3 }] } satisfies StatsMessage),
      });
      expect(await resend.json()).toEqual({ accepted: 1, duplicates: 1 });
    });

    it('enrolls again on the next load after the hub revoked it', async () => {
      const storage = memoryStorage();
      const enrollToken = await enrollmentToken(2);
      const options = {
        ...base(),
        hub: hub.url,
        storage,
        fetch: recordingFetch,
        report: { enrollToken, windowMs: 3_600_000 },
      };
      const model = await load(options);
      const before = enrolls().length;
      const deviceId = (model.reporting as { deviceId: string }).deviceId;
      await hubApi(hub.url, hub.adminToken)('DELETE', `/devices/${deviceId}`);
      await model.predict([1, 1, 1, 1]);
      expect((await model.reporting.flush()).error).toMatch(/401/);
      await model.dispose();
      const again = await load(options);
      expect(enrolls().length).toBe(before + 1);
      expect(again.reporting).toMatchObject({ enabled: true, deviceId: expect.not.stringMatching(deviceId) });
      await again.predict([1, 1, 1, 1]);
      expect(await again.reporting.flush()).toEqual({ sent: 1, pending: 0 });
      await again.dispose();
    });
  });

  describe.skipIf(!chromium.available)('in chromium, with everything from the hub', () => {
    it('opens /try, imports /sdk/edgefleet.js, runs on /sdk/ort/ engines, enrolls and reports', async () => {
      const browser = await launchBrowser({ webgpu: false });
      try {
        const { page } = await newPage(browser);
        const failed: string[] = [];
        page.on('response', (r) => {
          if (r.status() >= 400) failed.push(`${r.status()} ${new URL(r.url()).pathname}`);
        });
        await page.goto(`${hub.url}/try?model=mlp`);
        // The page's module imported ./edgefleet.js through its <base>, from the SDK route.
        await page.waitForSelector('body[data-ready]');
        expect(await page.inputValue('#model')).toBe('mlp');
        await page.addScriptTag({
          type: 'module',
          content: "import * as sdk from '/sdk/edgefleet.js'; window.edgefleet = sdk;",
        });
        await page.waitForFunction(() => 'edgefleet' in window);
        const enrollToken = (
          await hubApi(hub.url, hub.adminToken)<{ token: string }>('POST', '/enrollment-tokens', { uses: 1 })
        ).token;
        const result = await page.evaluate(
          async ({ token, enrollToken }) => {
            // biome-ignore lint/suspicious/noExplicitAny: the SDK's global on the page
            const sdk = (window as any).edgefleet;
            const model = await sdk.load({
              hub: location.origin,
              model: 'mlp',
              token,
              device: 'wasm',
              report: { enrollToken, name: 'chromium-tab', windowMs: 3_600_000 },
            });
            const outputs = await model.predict([1, 2, 3, 4]);
            const flushed = await model.reporting.flush();
            const summary = {
              version: model.version,
              engine: model.backend.engine,
              executionProvider: model.backend.executionProvider,
              shape: (Object.values(outputs)[0] as { shape: number[] }).shape,
              deviceId: model.reporting.deviceId as string,
              flushed,
            };
            await model.dispose();
            return summary;
          },
          { token, enrollToken },
        );
        expect(result).toMatchObject({
          version: '1.1.0',
          executionProvider: 'wasm',
          shape: [1, 3],
          flushed: { sent: 1, pending: 0 },
        });
        expect(result.deviceId).toMatch(/^chromium-tab-/);
        expect(failed).toEqual([]);
        const api = hubApi(hub.url, hub.adminToken);
        await expect
          .poll(async () => (await api<{ status: string }>('GET', `/devices/${result.deviceId}`)).status)
          .toBe('online');
        expect(await api('GET', `/devices/${result.deviceId}`)).toMatchObject({
          profile: 'browser-wasm',
          facts: { platform: 'browser', userAgent: expect.stringMatching(/Chrome/) },
          reported: { models: { mlp: { active: { version: '1.1.0' } } } },
        });
      } finally {
        await browser.close();
      }
    });
  });
});
