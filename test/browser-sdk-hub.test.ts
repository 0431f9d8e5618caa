/**
 * `load({hub, model, token})` in Node against a real hub: version choice, keys, typed errors; and
 * the browser-fleet routes proposed in packages/protocol/src/browser.ts, served by a stand-in in
 * front of the same hub (the hub does not have them yet), so the SDK's side of that contract —
 * enroll once, stats windows with increasing seq, reported state, re-enroll after revocation —
 * is checked payload by payload against the protocol schemas.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mlpModel } from '@edgefleet/converters';
import {
  type BrowserEnrollResponse,
  browserEnrollRequest,
  reportedState,
  type StatsMessage,
  statsMessage,
} from '@edgefleet/protocol';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Capabilities, type LoadOptions, load, memoryArtifactCache } from '../packages/web/src/index.ts';
import { type HubProc, hubApi, spawnHub } from './support/processes.ts';

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
    // No browser enrollment on this hub yet: reporting is off, and says why.
    expect(model.reporting).toMatchObject({ enabled: false, reason: expect.stringMatching(/404/) });
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

  describe('with the proposed browser routes', () => {
    let server: Server;
    let url: string;
    const enrolls: unknown[] = [];
    const stats: StatsMessage[] = [];
    const reported: unknown[] = [];
    let revoked = false;

    beforeAll(async () => {
      const secret = 'efd_browser_secret_0123456789';
      server = createServer(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        const body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
        const reply = (status: number, json: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(json));
        };
        const path = req.url ?? '';
        const deviceAuth = req.headers.authorization === `Bearer ${secret}` && !revoked;
        if (path === '/api/v1/browser/enroll' && req.method === 'POST') {
          enrolls.push(browserEnrollRequest.parse(body));
          revoked = false;
          const keys = (await (
            await fetch(`${hub.url}/api/v1/keys`, { headers: { authorization: `Bearer ${hub.adminToken}` } })
          ).json()) as { hubKey: { keyId: string; publicKey: string } };
          const response: BrowserEnrollResponse = {
            deviceId: `br-${enrolls.length}`,
            name: body.name ?? 'browser',
            secret,
            trustedKeys: [keys.hubKey],
            profile: body.profile,
          };
          return reply(201, response);
        }
        if (/^\/api\/v1\/devices\/[^/]+\/stats$/.test(path)) {
          if (!deviceAuth)
            return reply(401, { error: { code: 'UNAUTHORIZED', message: 'bad device secret' } });
          stats.push(statsMessage.parse(body));
          return reply(200, { accepted: body.windows.length, duplicates: 0 });
        }
        if (/^\/api\/v1\/devices\/[^/]+\/reported$/.test(path)) {
          if (!deviceAuth)
            return reply(401, { error: { code: 'UNAUTHORIZED', message: 'bad device secret' } });
          reported.push(reportedState.parse(body));
          return reply(200, { ok: true });
        }
        const upstream = await fetch(`${hub.url}${path}`, {
          method: req.method ?? 'GET',
          headers: req.headers.authorization ? { authorization: req.headers.authorization } : {},
        });
        res.writeHead(upstream.status, {
          'content-type': upstream.headers.get('content-type') ?? 'application/octet-stream',
        });
        res.end(new Uint8Array(await upstream.arrayBuffer()));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });

    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('enrolls once, reports what runs, and sends numbered stats windows that continue across loads', async () => {
      const storage = memoryStorage();
      const options = { ...base(), hub: url, storage, report: { name: 'kiosk-3', windowMs: 3_600_000 } };
      const first = await load(options);
      expect(first.reporting).toMatchObject({ enabled: true, deviceId: 'br-1' });
      expect(enrolls).toHaveLength(1);
      expect(enrolls[0]).toMatchObject({
        token,
        name: 'kiosk-3',
        profile: 'browser-wasm',
        facts: { platform: 'browser' },
      });
      await first.predict([1, 2, 3, 4]);
      await first.predict([4, 3, 2, 1]);
      expect(await first.reporting.flush()).toEqual({ sent: 1, pending: 0 });
      await first.dispose();

      const second = await load(options);
      expect(enrolls).toHaveLength(1); // credentials came from storage
      await second.predict([0, 0, 0, 1]);
      await second.dispose(); // dispose flushes the last window
      const windows = stats.flatMap((m) => m.windows);
      expect(windows.map((w) => w.seq)).toEqual([1, 2]);
      expect(windows[0]).toMatchObject({
        model: 'mlp',
        version: '1.1.0',
        window: { requests: 2, errors: 0 },
      });
      await expect.poll(() => reported.length).toBe(2);
      expect(reported[0]).toMatchObject({
        profile: 'browser-wasm',
        models: { mlp: { active: { version: '1.1.0', runtime: 'onnxruntime-web/wasm' } } },
      });
    });

    it('enrolls again on the next load after the hub refused its secret', async () => {
      const storage = memoryStorage();
      const options = { ...base(), hub: url, storage, report: { windowMs: 3_600_000 } };
      const model = await load(options);
      const before = enrolls.length;
      revoked = true;
      await model.predict([1, 1, 1, 1]);
      expect((await model.reporting.flush()).error).toMatch(/401/);
      await model.dispose();
      const again = await load(options);
      expect(enrolls.length).toBe(before + 1);
      expect(again.reporting.enabled).toBe(true);
      await again.dispose();
    });
  });
});
