/** Agent self-update on the hub: publishing signed release archives and deploying them through the desired state. */
import { randomBytes } from 'node:crypto';
import {
  generateSigningKey,
  publicKeyOf,
  type SigningKeyFile,
  sha256Hex,
  signManifest,
} from '@edgefleet/bundle';
import { type DesiredState, decodeChunk, desiredState, parseMessage, topics } from '@edgefleet/protocol';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../test/support/services.ts';
import { startTestHub, type TestHub } from './helpers.ts';

let t: TestHub;
let publisher: SigningKeyFile;
let operator: string;
let viewer: string;

beforeAll(async () => {
  t = await startTestHub();
  publisher = await generateSigningKey();
  const registered = await t.api('POST', '/api/v1/keys', {
    name: 'release-ci',
    publicKey: publicKeyOf(publisher).publicKey,
  });
  expect(registered.status).toBe(201);
  operator = (await t.api<{ token: string }>('POST', '/api/v1/tokens', { role: 'operator', name: 'op' })).body
    .token;
  viewer = (await t.api<{ token: string }>('POST', '/api/v1/tokens', { role: 'viewer', name: 'view' })).body
    .token;
});
afterAll(async () => {
  await t?.stop();
});

interface Release {
  archive: Uint8Array;
  manifestBytes: Uint8Array;
  headers: Record<string, string>;
}

const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString('base64');

/** A release as `edgefleet flash --key` writes it: random "archive" bytes and a signed manifest. */
async function release(
  version: string,
  arch: string,
  options: { key?: SigningKeyFile; archive?: Uint8Array; manifest?: Record<string, unknown> } = {},
): Promise<Release> {
  const archive = options.archive ?? new Uint8Array(randomBytes(300 + Math.floor(Math.random() * 200)));
  const manifest = {
    format: 'edgefleet-agent-release',
    version,
    arch,
    sha256: await sha256Hex(archive),
    size_bytes: archive.byteLength,
    ...options.manifest,
  };
  const manifestBytes = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
  const signature = await signManifest(manifestBytes, options.key ?? publisher);
  return {
    archive,
    manifestBytes,
    headers: {
      'X-Edgefleet-Release-Manifest': b64(manifestBytes),
      'X-Edgefleet-Release-Signature': b64(JSON.stringify(signature)),
    },
  };
}

async function put(
  path: string,
  body: Uint8Array,
  headers: Record<string, string>,
  token = operator,
): Promise<{
  status: number;
  body: { error?: { code: string; message: string; field?: string } } & Record<string, unknown>;
}> {
  const response = await fetch(`${t.hub.url}/api/v1/agent-releases/${path}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', ...headers },
    body: body as Uint8Array<ArrayBuffer>,
  });
  return { status: response.status, body: (await response.json()) as never };
}

async function enroll(name: string, arch: string, tags: string[]) {
  const token = await t.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', { uses: 1, tags });
  const enrolled = await t.api<{ deviceId: string; secret: string }>(
    'POST',
    '/api/v1/enroll',
    { token: token.body.token, name, facts: { arch, platform: 'linux', accelerators: [] } },
    '',
  );
  expect(enrolled.status).toBe(201);
  return enrolled.body;
}

describe('publishing an agent release', () => {
  it('stores a signed archive once: 201, the same bytes again 200, other bytes 409', async () => {
    const r = await release('0.2.0', 'x64');
    const first = await put('0.2.0/x64', r.archive, r.headers);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({
      version: '0.2.0',
      arch: 'x64',
      sha256: await sha256Hex(r.archive),
      sizeBytes: r.archive.byteLength,
      createdBy: 'token:op',
    });
    const again = await put('0.2.0/x64', r.archive, r.headers);
    expect(again.status).toBe(200);
    expect(again.body.createdAt).toBe(first.body.createdAt);

    const other = await release('0.2.0', 'x64');
    const conflict = await put('0.2.0/x64', other.archive, other.headers);
    expect(conflict.status).toBe(409);
    expect(conflict.body.error?.message).toMatch(/already published with other bytes/);

    const list = await t.api<{ releases: { version: string; arch: string; sha256: string }[] }>(
      'GET',
      '/api/v1/agent-releases',
      undefined,
      viewer,
    );
    expect(list.status).toBe(200);
    expect(list.body.releases).toContainEqual({
      version: '0.2.0',
      arch: 'x64',
      sha256: await sha256Hex(r.archive),
      sizeBytes: r.archive.byteLength,
      createdAt: first.body.createdAt,
    });
  });

  it('lists releases newest first', async () => {
    for (const v of ['0.4.0', '0.5.0']) {
      const r = await release(v, 'arm64');
      expect((await put(`${v}/arm64`, r.archive, r.headers)).status).toBe(201);
    }
    const list = await t.api<{ releases: { version: string }[] }>('GET', '/api/v1/agent-releases');
    const order = list.body.releases.map((x) => x.version).filter((v) => v === '0.4.0' || v === '0.5.0');
    expect(order).toEqual(['0.5.0', '0.4.0']);
  });

  it('refuses what does not match, naming what is wrong (400)', async () => {
    const r = await release('0.3.0', 'x64');
    const manifestHeader = 'X-Edgefleet-Release-Manifest';
    const signatureHeader = 'X-Edgefleet-Release-Signature';
    const cases: {
      why: string;
      path?: string;
      body?: Uint8Array;
      headers: Record<string, string>;
      message: RegExp;
      field: string;
    }[] = [
      {
        why: 'no manifest header',
        headers: { [signatureHeader]: r.headers[signatureHeader] as string },
        message: /missing header X-Edgefleet-Release-Manifest/,
        field: manifestHeader,
      },
      {
        why: 'no signature header',
        headers: { [manifestHeader]: r.headers[manifestHeader] as string },
        message: /missing header X-Edgefleet-Release-Signature/,
        field: signatureHeader,
      },
      {
        why: 'manifest not base64',
        headers: { ...r.headers, [manifestHeader]: 'not*base64!' },
        message: /X-Edgefleet-Release-Manifest is not valid base64/,
        field: manifestHeader,
      },
      {
        why: 'signature not base64',
        headers: { ...r.headers, [signatureHeader]: '%%%' },
        message: /X-Edgefleet-Release-Signature is not valid base64/,
        field: signatureHeader,
      },
      {
        why: 'signature not a signature file',
        headers: { ...r.headers, [signatureHeader]: b64('{"hello":1}') },
        message: /is not a signature file/,
        field: signatureHeader,
      },
      {
        why: 'signature over another manifest',
        headers: {
          ...r.headers,
          [manifestHeader]: b64(
            new TextEncoder().encode(new TextDecoder().decode(r.manifestBytes).replace('0.3.0', '0.3.1')),
          ),
        },
        message: /release manifest signature: signature does not cover this manifest/,
        field: signatureHeader,
      },
      {
        why: 'path version differs',
        path: '0.3.1/x64',
        headers: r.headers,
        message: /manifest's version is "0.3.0" but the URL says "0.3.1"/,
        field: 'version',
      },
      {
        why: 'path arch differs',
        path: '0.3.0/arm64',
        headers: r.headers,
        message: /manifest's arch is "x64" but the URL says "arm64"/,
        field: 'arch',
      },
      {
        why: 'invalid arch in the path',
        path: '0.3.0/riscv',
        headers: r.headers,
        message: /invalid arch "riscv"/,
        field: 'arch',
      },
      {
        why: 'invalid version in the path',
        path: 'latest/x64',
        headers: r.headers,
        message: /invalid version "latest"/,
        field: 'version',
      },
      {
        why: 'body size differs',
        body: r.archive.subarray(1),
        headers: r.headers,
        message: /the archive is \d+ bytes but the release manifest says \d+/,
        field: 'body',
      },
      {
        why: 'body sha differs',
        body: new Uint8Array(r.archive).map((b, i) => (i === 0 ? b ^ 0xff : b)),
        headers: r.headers,
        message: /the archive's sha256 is [0-9a-f]{64} but the release manifest says/,
        field: 'body',
      },
      {
        why: 'empty body',
        body: new Uint8Array(),
        headers: r.headers,
        message: /upload is empty/,
        field: 'body',
      },
    ];
    for (const c of cases) {
      const res = await put(c.path ?? '0.3.0/x64', c.body ?? r.archive, c.headers);
      expect(res.status, c.why).toBe(400);
      expect(res.body.error?.message, c.why).toMatch(c.message);
      expect(res.body.error?.field, c.why).toBe(c.field);
    }
    // A well-formed manifest that is not a release manifest.
    const bad = await release('0.3.0', 'x64', { manifest: { format: 'edgefleet-bundle' } });
    const res = await put('0.3.0/x64', bad.archive, bad.headers);
    expect(res.status).toBe(400);
    expect(res.body.error?.message).toMatch(/the release manifest is invalid: format/);
    // Nothing was stored by any refused upload.
    expect((await t.api('GET', '/api/v1/agent-releases/0.3.0')).status).toBe(404);
  });

  it('refuses a release signed by a key the hub does not trust', async () => {
    const stranger = await generateSigningKey();
    const r = await release('0.3.0', 'x64', { key: stranger });
    const res = await put('0.3.0/x64', r.archive, r.headers);
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe('BUNDLE_UNTRUSTED_KEY');
    expect(res.body.error?.message).toContain(stranger.keyId);
  });

  it('lets only a write role publish', async () => {
    const r = await release('0.3.0', 'x64');
    expect((await put('0.3.0/x64', r.archive, r.headers, viewer)).status).toBe(403);
  });
});

describe('deploying an agent release', () => {
  it('assigns devices whose arch has a release, skips the others with the reason, and follows them', async () => {
    const r = await release('0.6.0', 'x64');
    expect((await put('0.6.0/x64', r.archive, r.headers)).status).toBe(201);
    const x64 = await enroll('upd-x64', 'x64', ['upd']);
    const arm = await enroll('upd-arm64', 'arm64', ['upd']);
    const sha = await sha256Hex(r.archive);

    const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${t.hub.mqttPort}`, {
      clientId: x64.deviceId,
      username: x64.deviceId,
      password: x64.secret,
      reconnectPeriod: 0,
    });
    const received: DesiredState[] = [];
    const chunks: Uint8Array[] = [];
    client.on('message', (topic, payload) => {
      if (topic === topics.desired(x64.deviceId))
        received.push(parseMessage(desiredState, payload, 'desired'));
      else if (topic.endsWith(`/chunks/${sha}`))
        chunks.push(new Uint8Array(decodeChunk(payload)?.data ?? []));
    });
    await client.subscribeAsync(topics.desired(x64.deviceId), { qos: 1 });
    await client.subscribeAsync(topics.chunks(x64.deviceId, '+'), { qos: 1 });
    try {
      expect(
        (await t.api('POST', '/api/v1/agent-releases/9.9.9/deploy', { target: { all: true } }, operator))
          .status,
      ).toBe(404);
      expect(
        (await t.api('POST', '/api/v1/agent-releases/0.6.0/deploy', { target: { tags: ['upd'] } }, viewer))
          .status,
      ).toBe(403);
      const bad = await t.api<{ error: { field: string } }>(
        'POST',
        '/api/v1/agent-releases/0.6.0/deploy',
        { target: 'all' },
        operator,
      );
      expect(bad.status).toBe(400);

      const deployed = await t.api<{
        deploymentId: string;
        devices: { deviceId: string; name: string; arch: string; state: string; reason?: string }[];
      }>('POST', '/api/v1/agent-releases/0.6.0/deploy', { target: { tags: ['upd'] } }, operator);
      expect(deployed.status).toBe(201);
      expect(deployed.body.deploymentId).toMatch(/^agt_/);
      // Listed by name, as device listings are.
      expect(deployed.body.devices).toEqual([
        {
          deviceId: arm.deviceId,
          name: 'upd-arm64',
          arch: 'arm64',
          state: 'skipped',
          reason: 'no 0.6.0 release for arm64',
        },
        { deviceId: x64.deviceId, name: 'upd-x64', arch: 'x64', state: 'assigned' },
      ]);

      await waitFor(() => received.some((d) => d.agent !== undefined), 'desired.agent over MQTT');
      const agent = received.find((d) => d.agent)?.agent;
      expect(agent).toMatchObject({
        version: '0.6.0',
        deploymentId: deployed.body.deploymentId,
        artifact: { sha256: sha, size_bytes: r.archive.byteLength },
        manifest: b64(r.manifestBytes),
      });
      // Countersigned by the hub, so a device that pinned only the hub key trusts it too.
      const hubKey = (await t.api<{ hubKey: { keyId: string } }>('GET', '/api/v1/keys')).body.hubKey.keyId;
      const keyIds = (agent?.signature as { signatures: { keyId: string }[] } | undefined)?.signatures.map(
        (s) => s.keyId,
      );
      expect(keyIds).toEqual([publisher.keyId, hubKey]);
      const armDevice = await t.api<{ desired: DesiredState | null }>(
        'GET',
        `/api/v1/devices/${arm.deviceId}`,
      );
      expect(armDevice.body.desired?.agent).toBeUndefined();

      const stored = await t.hub.ctx.store.events.list({ subject: deployed.body.deploymentId });
      expect(stored.map((e) => [e.kind, e.actor])).toEqual([['agent-release.deployed', 'token:op']]);

      // The assigned device may download its archive; the other device may not.
      const download = await fetch(`${t.hub.url}/api/v1/artifacts/${sha}`, {
        headers: { authorization: `Bearer ${x64.secret}` },
      });
      expect(download.status).toBe(200);
      expect(new Uint8Array(await download.arrayBuffer())).toEqual(r.archive);
      expect((await t.api('GET', `/api/v1/artifacts/${sha}`, undefined, arm.secret)).status).toBe(403);

      // Status before and after the device reports progress.
      const before = await t.api<{ releases: { arch: string }[]; devices: unknown[] }>(
        'GET',
        '/api/v1/agent-releases/0.6.0',
        undefined,
        viewer,
      );
      expect(before.status).toBe(200);
      expect(before.body.releases.map((x) => x.arch)).toEqual(['x64']);
      expect(before.body.devices).toEqual([
        {
          deviceId: x64.deviceId,
          name: 'upd-x64',
          arch: 'x64',
          deploymentId: deployed.body.deploymentId,
          runningVersion: null,
          update: null,
        },
      ]);
      const update = {
        deploymentId: deployed.body.deploymentId,
        version: '0.6.0',
        state: 'downloading' as const,
        progress: { bytes: 100, total: r.archive.byteLength },
        updatedAt: new Date().toISOString(),
      };
      await client.publishAsync(
        topics.reported(x64.deviceId),
        JSON.stringify({
          desiredRevision: received.at(-1)?.revision ?? null,
          ts: new Date().toISOString(),
          agentVersion: '0.1.0',
          profile: null,
          models: {},
          // Asking for the archive over MQTT: the chunk streamer applies the same check as downloads.
          transfers: [{ sha256: sha, offset: 0, size: r.archive.byteLength }],
          agentUpdate: update,
        }),
        { qos: 1, retain: true },
      );
      await waitFor(async () => {
        const s = await t.api<{ devices: { update: unknown }[] }>('GET', '/api/v1/agent-releases/0.6.0');
        return s.body.devices[0]?.update !== null;
      }, 'the reported agentUpdate');
      await waitFor(() => chunks.length > 0, 'the archive over MQTT');
      expect(chunks[0]).toEqual(r.archive);
      const after = await t.api<{ devices: { runningVersion: string; update: unknown }[] }>(
        'GET',
        '/api/v1/agent-releases/0.6.0',
      );
      expect(after.body.devices[0]).toMatchObject({ runningVersion: '0.1.0', update });
    } finally {
      await client.endAsync();
    }
  });

  it('keeps desired.agent when a model is deployed afterwards', async () => {
    const { setDesiredModel } = await import('../src/rollouts/desired.ts');
    const r = await release('0.7.0', 'arm64');
    expect((await put('0.7.0/arm64', r.archive, r.headers)).status).toBe(201);
    const d = await enroll('keep-agent', 'arm64', ['keep']);
    const deployed = await t.api(
      'POST',
      '/api/v1/agent-releases/0.7.0/deploy',
      { target: { devices: ['keep-agent'] } },
      operator,
    );
    expect(deployed.status).toBe(201);
    const written = await setDesiredModel(t.hub.ctx, d.deviceId, 'm', null);
    expect(written?.agent?.version).toBe('0.7.0');
  });
});
