/** A real hub in-process on free ports with a temp data dir, plus small API helpers. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BundleManifestInput,
  describeFile,
  generateSigningKey,
  packBundle,
  type SigningKeyFile,
} from '@edgefleet/bundle';
import pino from 'pino';
import { type Hub, type HubOptions, startHub } from '../src/hub.ts';

export interface TestHub {
  hub: Hub;
  dir: string;
  adminToken: string;
  api<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    token?: string,
  ): Promise<{ status: number; body: T; headers: Headers }>;
  stop(): Promise<void>;
}

export async function startTestHub(options: HubOptions = {}): Promise<TestHub> {
  const dir = await mkdtemp(join(tmpdir(), 'ef-hub-'));
  const adminToken = `efa_test_${Math.random().toString(36).slice(2)}`;
  const hub = await startHub({
    port: 0,
    mqttPort: 0,
    host: '127.0.0.1',
    dataDir: dir,
    adminToken,
    logger: pino({ level: process.env.EDGEFLEET_TEST_LOG ?? 'silent' }),
    ...options,
  });
  return {
    hub,
    dir,
    adminToken,
    async api(method, path, body, token = adminToken) {
      const raw = body instanceof Uint8Array;
      const response = await fetch(`${hub.url}${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined && !raw ? { 'content-type': 'application/json' } : {}),
        },
        body: raw ? (body as Uint8Array<ArrayBuffer>) : body !== undefined ? JSON.stringify(body) : undefined,
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON
      }
      return { status: response.status, body: parsed as never, headers: response.headers };
    },
    async stop() {
      await hub.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A minimal signed bundle with one fake artifact (the hub does not run models). */
export async function fakeBundle(
  name: string,
  version: string,
  key?: SigningKeyFile,
  artifact = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
) {
  const signingKey = key ?? (await generateSigningKey());
  const ref = await describeFile('cpu/model.onnx', artifact);
  const manifest: BundleManifestInput = {
    format: 'edgefleet-bundle',
    formatVersion: 1,
    name,
    version,
    createdAt: '2026-01-01T00:00:00.000Z',
    source: { format: 'onnx', sha256: ref.sha256, size_bytes: ref.size_bytes },
    inputs: [{ name: 'x', shape: [1, 2], dtype: 'float32' }],
    outputs: [{ name: 'y', shape: [1, 2], dtype: 'float32' }],
    artifacts: [{ ...ref, target: 'cpu', runtime: 'onnxruntime', precision: 'fp32' }],
  };
  const packed = await packBundle(manifest, new Map([['cpu/model.onnx', artifact]]), signingKey);
  return { key: signingKey, packed, artifactSha256: ref.sha256 };
}

export async function enrollDevice(t: TestHub, name: string, tags: string[] = []) {
  const token = await t.api<{ token: string }>('POST', '/api/v1/enrollment-tokens', { uses: 1, tags });
  const enrolled = await t.api<{ deviceId: string; secret: string; mqtt: { url: string; username: string } }>(
    'POST',
    '/api/v1/enroll',
    { token: token.body.token, name, facts: { arch: 'x64', platform: 'linux', accelerators: [] } },
    '',
  );
  if (enrolled.status !== 201) throw new Error(`enroll failed: ${JSON.stringify(enrolled.body)}`);
  return enrolled.body;
}
