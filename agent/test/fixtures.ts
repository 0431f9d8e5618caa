/**
 * Agent test fixtures: signed bundles of tiny real ONNX models, a small HTTP server that serves
 * manifests and artifacts the way the hub does (bearer, Range, ETag) with faults on demand, and a
 * reconciler wired to real parts (disk store, onnxruntime-node, that server).
 */
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import {
  type ArtifactEntry,
  type BundleManifest,
  describeFile,
  type ImagePreprocessing,
  publicKeyOf,
  type SignatureFile,
  type SigningKeyFile,
  signManifest,
  toBase64,
  unpackBundle,
} from '@edgefleet/bundle';
import { mlpModel, packageOnnx } from '@edgefleet/converters';
import type { DesiredModel, DesiredState, EnrollRequest, TrustedKey } from '@edgefleet/protocol';
import pino from 'pino';
import { HubApi } from '../src/hub-api.ts';
import { LoadedModels } from '../src/inference/loaded-models.ts';
import { InferenceMetrics } from '../src/inference/metrics.ts';
import { Reconciler } from '../src/reconciler.ts';
import { BackendRegistry } from '../src/runtime/backend.ts';
import { onnxBackend } from '../src/runtime/onnx.ts';
import { ShadowRunner } from '../src/shadow.ts';
import { type InstalledEntry, ModelStore } from '../src/state/model-store.ts';

export const quiet = pino({ level: process.env.EDGEFLEET_TEST_LOG ?? 'silent' });
export const sha256Of = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

export interface TestBundle {
  manifest: BundleManifest;
  manifestBytes: Uint8Array;
  signature: SignatureFile;
  /** Files by their bundle path (artifact, smoke-test.json). */
  files: Map<string, Uint8Array>;
  artifact: ArtifactEntry;
}

export interface BundleSpec {
  name?: string;
  version: string;
  seed?: number;
  /** An ONNX model to package instead of the default 4→8→3 MLP. */
  model?: Uint8Array;
  preprocessing?: ImagePreprocessing;
  labels?: string[];
}

/** A real fp32 bundle made the way the hub makes one from a raw .onnx upload (with a smoke test). */
export async function makeBundle(key: SigningKeyFile, spec: BundleSpec): Promise<TestBundle> {
  const packed = await packageOnnx({
    source: spec.model ?? mlpModel({ inputs: 4, hidden: [8], outputs: 3, seed: spec.seed ?? 1 }),
    name: spec.name ?? 'm',
    version: spec.version,
    key,
    ...(spec.preprocessing ? { preprocessing: spec.preprocessing } : {}),
    ...(spec.labels ? { labels: spec.labels } : {}),
  });
  const unpacked = await unpackBundle(packed.bytes, { trustedKeys: [publicKeyOf(key)] });
  return {
    manifest: unpacked.manifest,
    manifestBytes: unpacked.manifestBytes,
    signature: packed.signature,
    files: unpacked.files,
    artifact: unpacked.manifest.artifacts[0] as ArtifactEntry,
  };
}

/**
 * A bundle whose manifest was changed (and files replaced) by its publisher and signed again:
 * validly signed, but with contents of the test's choosing (a broken model, a wrong smoke test).
 */
export async function resign(
  bundle: TestBundle,
  key: SigningKeyFile,
  change: { manifest?: (m: BundleManifest) => BundleManifest; files?: Record<string, Uint8Array> },
): Promise<TestBundle> {
  const files = new Map(bundle.files);
  let manifest = structuredClone(bundle.manifest);
  for (const [path, bytes] of Object.entries(change.files ?? {})) {
    files.set(path, bytes);
    const ref = await describeFile(path, bytes);
    manifest.artifacts = manifest.artifacts.map((a) => (a.file === path ? { ...a, ...ref } : a));
    if (manifest.smokeTest?.file === path) manifest.smokeTest = ref;
  }
  manifest = change.manifest ? change.manifest(manifest) : manifest;
  const manifestBytes = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
  const artifact = manifest.artifacts[0] as ArtifactEntry;
  return { manifest, manifestBytes, signature: await signManifest(manifestBytes, key), files, artifact };
}

/** The desired-state entry for a bundle, with the signed manifest carried inline (as the hub sends it). */
export function desiredFor(
  bundle: TestBundle,
  deploymentId: string,
  extra: Partial<DesiredModel> = {},
): DesiredModel {
  const a = bundle.artifact;
  return {
    name: bundle.manifest.name,
    version: bundle.manifest.version,
    deploymentId,
    artifact: {
      sha256: a.sha256,
      size_bytes: a.size_bytes,
      target: a.target,
      runtime: a.runtime,
      precision: a.precision,
      file: a.file,
    },
    manifest: toBase64(bundle.manifestBytes),
    signature: bundle.signature,
    ...extra,
  };
}

let revision = 0;
export function desiredState(models: Record<string, DesiredModel>): DesiredState {
  return { revision: ++revision, issuedAt: new Date().toISOString(), models, config: {} };
}

export interface ServedRequest {
  path: string;
  range: string | undefined;
  /** Bytes of body sent. */
  sent: number;
}

/** A stand-in for the hub's device API: manifests and artifacts by sha256, with Range and faults. */
export interface ArtifactServer {
  url: string;
  secret: string;
  requests: ServedRequest[];
  blobs: Map<string, Uint8Array>;
  /** Serve every file of a bundle (and its manifest at the hub's manifest route, unsigned if asked). */
  add(bundle: TestBundle, options?: { unsigned?: boolean }): void;
  /** Next artifact response: drop the connection after this many body bytes. */
  cutNextAfter(bytes: number): void;
  /** Next artifact response: these bytes instead of the real ones. */
  corruptNext(): void;
  /** Answer Range requests with the whole file (200), as a server without Range support would. */
  ignoreRange: boolean;
  /** What `POST /api/v1/enroll` accepts and answers (the secret is this server's). */
  enrollment: { token: string; deviceId: string; mqttUrl: string; trustedKeys: TrustedKey[] } | undefined;
  enrollRequests: EnrollRequest[];
  close(): Promise<void>;
}

export async function startArtifactServer(): Promise<ArtifactServer> {
  const secret = 'efd_test_secret';
  const blobs = new Map<string, Uint8Array>();
  const manifests = new Map<string, { manifest: string; signature?: SignatureFile }>();
  const requests: ServedRequest[] = [];
  let cutAfter: number | undefined;
  let corrupt = false;
  const state = { ignoreRange: false };
  const enrollRequests: EnrollRequest[] = [];
  const self: { enrollment: ArtifactServer['enrollment'] } = { enrollment: undefined };

  const enroll = (req: IncomingMessage, res: ServerResponse) => {
    let text = '';
    req.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
    });
    req.on('end', () => {
      const body = JSON.parse(text) as EnrollRequest;
      enrollRequests.push(body);
      const e = self.enrollment;
      if (!e || body.token !== e.token) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'ENROLLMENT_TOKEN_INVALID', message: 'unknown token' } }));
        return;
      }
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          deviceId: e.deviceId,
          name: body.name ?? e.deviceId,
          secret,
          mqtt: { url: e.mqttUrl, username: e.deviceId },
          trustedKeys: e.trustedKeys,
          profile: body.profile ?? null,
        }),
      );
    });
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '';
    const record: ServedRequest = { path, range: req.headers.range, sent: 0 };
    requests.push(record);
    if (req.method === 'POST' && path === '/api/v1/enroll') return enroll(req, res);
    if (req.headers.authorization !== `Bearer ${secret}`) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'UNAUTHORIZED', message: 'bad token' } }));
      return;
    }
    const m = /^\/api\/v1\/models\/([^/]+)\/versions\/([^/]+)\/manifest$/.exec(path);
    if (m) {
      const body = manifests.get(`${m[1]}@${m[2]}`);
      res.writeHead(body ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body ?? { error: { code: 'NOT_FOUND', message: 'no such version' } }));
      return;
    }
    const a = /^\/api\/v1\/artifacts\/([0-9a-f]{64})$/.exec(path);
    const blob = a ? blobs.get(a[1] as string) : undefined;
    if (!a || !blob) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'no such artifact' } }));
      return;
    }
    let bytes = blob;
    if (corrupt) {
      corrupt = false;
      bytes = Uint8Array.from(blob);
      bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] ?? 0) ^ 0xff;
    }
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = range && !state.ignoreRange ? Number(range[1]) : 0;
    const headers = {
      etag: `"${a[1]}"`,
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
    };
    if (start > 0) {
      res.writeHead(206, {
        ...headers,
        'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}`,
        'content-length': bytes.length - start,
      });
    } else {
      res.writeHead(200, { ...headers, 'content-length': bytes.length });
    }
    const body = bytes.subarray(start);
    if (cutAfter !== undefined) {
      const n = Math.min(cutAfter, body.length - 1);
      cutAfter = undefined;
      record.sent = n;
      // Flush the first n bytes, then drop the connection mid-body.
      res.write(body.subarray(0, n), () => setImmediate(() => res.socket?.destroy()));
      return;
    }
    record.sent = body.length;
    res.end(body);
  };

  const server: Server = createServer(handle);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    secret,
    requests,
    blobs,
    add(bundle, options = {}) {
      for (const bytes of bundle.files.values()) blobs.set(sha256Of(bytes), bytes);
      manifests.set(`${bundle.manifest.name}@${bundle.manifest.version}`, {
        manifest: toBase64(bundle.manifestBytes),
        ...(options.unsigned ? {} : { signature: bundle.signature }),
      });
    },
    cutNextAfter(bytes) {
      cutAfter = bytes;
    },
    corruptNext() {
      corrupt = true;
    },
    get ignoreRange() {
      return state.ignoreRange;
    },
    set ignoreRange(v: boolean) {
      state.ignoreRange = v;
    },
    get enrollment() {
      return self.enrollment;
    },
    set enrollment(v) {
      self.enrollment = v;
    },
    enrollRequests,
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok()); // called (with an error) when already closed, too
      }),
  };
}

export interface Rig {
  reconciler: Reconciler;
  store: ModelStore;
  models: LoadedModels;
  /** Every deployment state the slot went through, in order (consecutive repeats collapsed). */
  states(slot: string): string[];
  stop(): Promise<void>;
}

/** A reconciler on real parts: disk store under `dataDir`, onnxruntime-node, the artifact server. */
export function startRig(dataDir: string, server: ArtifactServer, key: SigningKeyFile): Rig {
  const store = new ModelStore(dataDir);
  const hub = new HubApi(server.url, server.secret);
  const registry = new BackendRegistry();
  registry.register(onnxBackend());
  const models = new LoadedModels(new InferenceMetrics(), quiet);
  const seen = new Map<string, string[]>();
  let reconciler: Reconciler | undefined;
  const changed = () => {
    for (const [slot, d] of reconciler?.deployments ?? []) {
      const list = seen.get(slot) ?? [];
      if (list.at(-1) !== d.state) list.push(d.state);
      seen.set(slot, list);
    }
  };
  const deps = {
    dataDir,
    store,
    hub,
    registry,
    trustedKeys: () => [publicKeyOf(key)],
    logger: quiet,
    fetchBlob: hub.download.bind(hub),
  };
  const shadows = new ShadowRunner({ ...deps, models, changed });
  reconciler = new Reconciler({ ...deps, models, shadows, changed, onSwitched: () => undefined });
  const r = reconciler;
  return {
    reconciler: r,
    store,
    models,
    states: (slot) => seen.get(slot) ?? [],
    async stop() {
      r.stop();
      await r.idle();
      await models.closeAll();
    },
  };
}

/** Load a bundle's artifact with the agent's ONNX backend and serve it in `slot`. */
export async function serveBundle(
  into: LoadedModels,
  b: TestBundle,
  workDir: string,
  slot = b.manifest.name,
): Promise<void> {
  const path = join(workDir, `${slot}-${b.manifest.version}.onnx`);
  await writeFile(path, b.files.get(b.artifact.file) as Uint8Array);
  const session = await onnxBackend().load(path, b.artifact, b.manifest);
  const a = b.artifact;
  const entry: InstalledEntry = {
    name: b.manifest.name,
    version: b.manifest.version,
    sha256: a.sha256,
    target: a.target,
    runtime: a.runtime,
    precision: a.precision,
    since: new Date().toISOString(),
    deploymentId: 'test',
    dir: '.',
    artifact: a,
    probation: null,
  };
  into.swap({ slot, entry, manifest: b.manifest, session });
}
