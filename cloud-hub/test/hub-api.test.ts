import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { publicKeyOf } from '@edgefleet/bundle';
import { mlpModel } from '@edgefleet/converters';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollDevice, fakeBundle, startTestHub, type TestHub } from './helpers.ts';

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.isDirectory()) out.push(...(await filesUnder(join(dir, entry.name))));
    else out.push(entry.name);
  }
  return out;
}

describe('hub HTTP API', () => {
  let t: TestHub;
  beforeAll(async () => {
    t = await startTestHub();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('reports health, metrics and an OpenAPI document without a token', async () => {
    expect((await t.api('GET', '/healthz', undefined, '')).body).toMatchObject({
      status: 'ok',
      db: true,
      broker: true,
    });
    const metrics = await fetch(`${t.hub.url}/metrics`).then((r) => r.text());
    expect(metrics).toContain('edgefleet_http_requests_total');
    const openapi = await t.api<{ paths: Record<string, Record<string, unknown>> }>(
      'GET',
      '/openapi.json',
      undefined,
      '',
    );
    expect(Object.keys(openapi.body.paths)).toContain('/api/v1/models/{name}/versions/{version}');
    expect(openapi.body.paths['/api/v1/rollouts']?.post).toMatchObject({ 'x-edgefleet-permission': 'write' });
  });

  it('refuses a missing token with 401 and a read-only token on writes with 403', async () => {
    expect((await t.api('GET', '/api/v1/devices', undefined, '')).status).toBe(401);
    const viewer = await t.api<{ token: string }>('POST', '/api/v1/tokens', { role: 'viewer', name: 'dash' });
    expect(viewer.status).toBe(201);
    expect((await t.api('GET', '/api/v1/devices', undefined, viewer.body.token)).status).toBe(200);
    const denied = await t.api<{ error: { code: string } }>(
      'POST',
      '/api/v1/enrollment-tokens',
      { uses: 1 },
      viewer.body.token,
    );
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe('FORBIDDEN');
  });

  it('answers an invalid body with 400 naming the field', async () => {
    const r = await t.api<{ error: { code: string; field: string; message: string } }>(
      'POST',
      '/api/v1/enrollment-tokens',
      { uses: 0 },
    );
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'VALIDATION_FAILED', field: 'uses' });
    const unknownKey = await t.api<{ error: { field: string } }>('POST', '/api/v1/rollouts', {
      model: 'm',
      version: '1.0.0',
      target: { all: true },
      bogus: 1,
    });
    expect(unknownKey.status).toBe(400);
    const notJson = await fetch(`${t.hub.url}/api/v1/enrollment-tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}` },
      body: '{',
    });
    expect(notJson.status).toBe(400);
  });

  it('enrolls a device once per token use and refuses the used token', async () => {
    const token = await t.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', {
      uses: 1,
      tags: ['lab'],
    });
    const body = {
      token: token.body.token,
      name: 'pi-a',
      facts: { arch: 'arm64', platform: 'linux', accelerators: [] },
    };
    const first = await t.api<{
      deviceId: string;
      secret: string;
      trustedKeys: unknown[];
      mqtt: { url: string };
    }>('POST', '/api/v1/enroll', body, '');
    expect(first.status).toBe(201);
    expect(first.body.secret).toMatch(/^efd_/);
    expect(first.body.trustedKeys).toHaveLength(1);
    expect(first.body.mqtt.url).toBe(`mqtt://127.0.0.1:${t.hub.mqttPort}`);
    const again = await t.api<{ error: { code: string } }>('POST', '/api/v1/enroll', body, '');
    expect(again.status).toBe(401);
    const device = await t.api<{ tags: string[]; name: string }>(
      'GET',
      `/api/v1/devices/${first.body.deviceId}`,
    );
    expect(device.body).toMatchObject({ name: 'pi-a', tags: ['lab'] });
  });

  it('accepts a bundle only when a trusted key signed it', async () => {
    const { key, packed } = await fakeBundle('m1', '1.0.0');
    const refused = await t.api<{ error: { code: string } }>(
      'PUT',
      '/api/v1/models/m1/versions/1.0.0',
      packed.bytes,
    );
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('BUNDLE_UNTRUSTED_KEY');
    const reg = await t.api('POST', '/api/v1/keys', { name: 'ci', publicKey: publicKeyOf(key).publicKey });
    expect(reg.status).toBe(201);
    const ok = await t.api<{ signedBy: string; files: unknown[] }>(
      'PUT',
      '/api/v1/models/m1/versions/1.0.0',
      packed.bytes,
    );
    expect(ok.status).toBe(201);
    expect(ok.body.signedBy).toBe(key.keyId);
    const dup = await t.api('PUT', '/api/v1/models/m1/versions/1.0.0', packed.bytes);
    expect(dup.status).toBe(409);
  });

  it('refuses a bundle whose name or version differs from the URL, naming the field', async () => {
    const keys = await t.api<{ keys: { keyId: string }[] }>('GET', '/api/v1/keys');
    expect(keys.body.keys.length).toBeGreaterThan(0);
    const { key, packed } = await fakeBundle('m2', '2.0.0');
    await t.api('POST', '/api/v1/keys', { name: 'k2', publicKey: key.publicKey });
    const r = await t.api<{ error: { field: string } }>(
      'PUT',
      '/api/v1/models/m2/versions/2.0.1',
      packed.bytes,
    );
    expect(r.status).toBe(400);
    expect(r.body.error.field).toBe('version');
  });

  it('leaves nothing behind after a bad upload', async () => {
    const before = await filesUnder(join(t.dir, 'artifacts'));
    const { key, packed } = await fakeBundle('m3', '1.0.0');
    await t.api('POST', '/api/v1/keys', { name: 'k3', publicKey: key.publicKey });
    // Cut inside the manifest, and cut on a block boundary before the artifact.
    for (const bytes of [
      packed.bytes.slice(0, 1500),
      packed.bytes.slice(0, 2048),
      new TextEncoder().encode('definitely not a model'),
      new Uint8Array(0),
    ]) {
      const r = await t.api<{ error: { code: string; message: string } }>(
        'PUT',
        '/api/v1/models/m3/versions/1.0.0',
        bytes,
      );
      expect(r.status).toBe(400);
      expect(r.body.error.message.length).toBeGreaterThan(5);
    }
    expect(await filesUnder(join(t.dir, 'artifacts'))).toEqual(before);
    expect((await t.api('GET', '/api/v1/models/m3/versions/1.0.0')).status).toBe(404);
  });

  it('refuses a truncated .onnx upload with ONNX_INVALID and keeps nothing of it', async () => {
    const before = await filesUnder(join(t.dir, 'artifacts'));
    const model = mlpModel({ inputs: 4, hidden: [16], outputs: 3 });
    for (const cut of [Math.floor(model.length / 2), model.length - 7]) {
      const r = await t.api<{ error: { code: string; message: string } }>(
        'PUT',
        '/api/v1/models/m3b/versions/1.0.0',
        model.slice(0, cut),
      );
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('ONNX_INVALID');
      expect(r.body.error.message).toMatch(/onnx/i);
    }
    expect(await filesUnder(join(t.dir, 'artifacts'))).toEqual(before);
    expect((await t.api('GET', '/api/v1/models/m3b')).status).toBe(404);
    // The whole model is accepted, so the refusals above were about the cut and nothing else.
    expect((await t.api('PUT', '/api/v1/models/m3b/versions/1.0.0', model)).status).toBe(201);
  });

  it('serves artifacts with ETag and byte ranges', async () => {
    const { key, packed, artifactSha256 } = await fakeBundle('m4', '1.0.0');
    await t.api('POST', '/api/v1/keys', { name: 'k4', publicKey: key.publicKey });
    await t.api('PUT', '/api/v1/models/m4/versions/1.0.0', packed.bytes);
    const url = `${t.hub.url}/api/v1/artifacts/${artifactSha256}`;
    const auth = { authorization: `Bearer ${t.adminToken}` };
    const whole = await fetch(url, { headers: auth });
    expect(whole.headers.get('etag')).toBe(`"${artifactSha256}"`);
    expect([...new Uint8Array(await whole.arrayBuffer())]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    const part = await fetch(url, { headers: { ...auth, range: 'bytes=5-' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 5-7/8');
    expect([...new Uint8Array(await part.arrayBuffer())]).toEqual([6, 7, 8]);
    expect((await fetch(url, { headers: { ...auth, range: 'bytes=9-' } })).status).toBe(416);
    expect((await fetch(url, { headers: { ...auth, 'if-none-match': `"${artifactSha256}"` } })).status).toBe(
      304,
    );
  });

  it('lets a device fetch only the model versions it is assigned', async () => {
    const { key, packed, artifactSha256 } = await fakeBundle(
      'm5',
      '1.0.0',
      undefined,
      new Uint8Array([9, 9, 9]),
    );
    await t.api('POST', '/api/v1/keys', { name: 'k5', publicKey: key.publicKey });
    await t.api('PUT', '/api/v1/models/m5/versions/1.0.0', packed.bytes);
    const a = await enrollDevice(t, 'dev-a', ['a']);
    const b = await enrollDevice(t, 'dev-b', ['b']);
    const deploy = await t.api<{ id: string }>('POST', '/api/v1/rollouts', {
      model: 'm5',
      version: '1.0.0',
      target: { tags: ['a'] },
    });
    expect(deploy.status).toBe(201);
    expect((await t.api('GET', `/api/v1/artifacts/${artifactSha256}`, undefined, a.secret)).status).toBe(200);
    expect(
      (await t.api('GET', '/api/v1/models/m5/versions/1.0.0/manifest', undefined, a.secret)).status,
    ).toBe(200);
    expect((await t.api('GET', `/api/v1/artifacts/${artifactSha256}`, undefined, b.secret)).status).toBe(403);
    expect(
      (await t.api('GET', '/api/v1/models/m5/versions/1.0.0/manifest', undefined, b.secret)).status,
    ).toBe(403);
    // A device secret is no API token.
    expect((await t.api('GET', '/api/v1/devices', undefined, a.secret)).status).toBe(403);
  });
});
