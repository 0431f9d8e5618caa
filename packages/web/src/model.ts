/**
 * The hub-free core: a signed manifest plus a way to fetch artifacts by sha256 become a running
 * model. Verifies the signature and expiry, plans artifacts for this browser, activates the first
 * that opens and passes its probe, and falls back again if an unprobed one fails its first run.
 */
import {
  BundleError,
  type BundleManifest,
  checkNotExpired,
  decodeTensor,
  parseManifestBytes,
  type SignatureFile,
  type SmokeTestFile,
  signatureFile,
  smokeTestFile,
  verifyManifestSignature,
} from '@edgefleet/bundle';
import type { TrustedKey } from '@edgefleet/protocol';
import { type Active, activate, type FallbackRecord, type Probe } from './activate.ts';
import {
  type ArtifactCache,
  browserArtifactCache,
  type FetchArtifact,
  getVerifiedArtifact,
} from './artifact-store.ts';
import { type Capabilities, detectCapabilities, type WebGpuInfo } from './capabilities.ts';
import { describeError } from './errors.ts';
import { prepareInputs, specsOf } from './io.ts';
import { type DevicePreference, planCandidates } from './plan.ts';
import { type LoadOrt, onnxEngine } from './runtimes/onnx.ts';
import { type LoadTflite, tfliteEngine } from './runtimes/tflite.ts';
import { EdgefleetModel } from './session.ts';
import { syntheticInputs, type Tensor } from './tensors.ts';

export interface Runtimes {
  /** onnxruntime-web for the given execution provider. */
  onnx?: LoadOrt;
  /** tfjs-tflite's `tfweb` client. */
  tflite?: LoadTflite;
}

export type ProbeMode = 'auto' | 'zeros' | 'none';

export interface LoadFromManifestOptions {
  /** Keys a signature must come from (the hub's key, given at enrollment or pinned by the page). */
  trustedKeys: readonly TrustedKey[];
  fetchArtifact: FetchArtifact;
  runtimes: Runtimes;
  /** Detected when absent. */
  capabilities?: Capabilities;
  /** The Cache API when absent; `false` for none. */
  cache?: ArtifactCache | false;
  device?: DevicePreference;
  /** Try this artifact file first (e.g. to compare backends); fallback still applies. */
  artifact?: string;
  /**
   * The run that proves a candidate works before `load` returns: `auto` (default) runs the bundle's
   * smoke test and compares outputs, or zeros without one; `zeros` never compares; `none` skips it,
   * so a failing first run falls back inside the first `predict` instead.
   */
  probe?: ProbeMode;
  /** Milliseconds for timings; `performance.now` by default. */
  now?: () => number;
  /** Wall clock for the expiry check. */
  clock?: () => Date;
}

/** What runs, why, and what was tried before it. */
export interface BackendInfo {
  engine: 'onnxruntime-web' | 'tfjs-tflite';
  executionProvider: 'webgpu' | 'wasm';
  /** The device profile of what runs: `browser-webgpu` when the WebGPU EP runs it. */
  profile: 'browser-webgpu' | 'browser-wasm';
  artifact: {
    file: string;
    target: string;
    precision: string;
    runtime: string;
    sha256: string;
    size_bytes: number;
  };
  reason: string;
  fallbacks: FallbackRecord[];
  skipped: { file: string; reason: string }[];
  /** Plan-wide choices, e.g. a software WebGPU adapter put after WASM. */
  notes: string[];
  webgpu: WebGpuInfo;
  cache: 'hit' | 'miss' | 'uncached';
  probe: Active['probe'];
  agreement?: { maxAbs: number; cosine: number };
  signedBy: string;
  timings: { total_ms: number; fetch_ms: number; session_ms: number; probe_ms: number };
}

/** Verify a signed manifest and start the best artifact this browser can run. */
export async function loadFromManifest(
  manifestBytes: Uint8Array,
  signature: SignatureFile | unknown,
  options: LoadFromManifestOptions,
): Promise<EdgefleetModel> {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const parsedSignature = signatureFile.safeParse(signature);
  if (!parsedSignature.success) {
    throw new BundleError(
      signature === undefined || signature === null ? 'BUNDLE_UNSIGNED' : 'BUNDLE_SIGNATURE_INVALID',
      'the manifest signature is missing or malformed',
    );
  }
  const signedBy = await verifyManifestSignature(manifestBytes, parsedSignature.data, options.trustedKeys);
  const manifest = parseManifestBytes(manifestBytes);
  checkNotExpired(manifest, options.clock?.() ?? new Date());
  const capabilities =
    options.capabilities ?? (await detectCapabilities({ webgpu: options.device !== 'wasm' }));
  const plan = planCandidates(manifest, capabilities, {
    ...(options.device ? { device: options.device } : {}),
    ...(options.artifact !== undefined ? { artifact: options.artifact } : {}),
  });
  const cache = options.cache === false ? undefined : (options.cache ?? browserArtifactCache());
  const fallbacks: FallbackRecord[] = [];
  const ctx = {
    engines: {
      ...(options.runtimes.onnx ? { 'onnxruntime-web': onnxEngine(options.runtimes.onnx) } : {}),
      ...(options.runtimes.tflite ? { 'tfjs-tflite': tfliteEngine(options.runtimes.tflite) } : {}),
    },
    fetchArtifact: options.fetchArtifact,
    cache,
    specsOf: (a: BundleManifest['artifacts'][number]) => specsOf(manifest, a),
    now,
    fallbacks,
  };
  const probe = await buildProbe(manifest, options, cache);
  const active = await activate(ctx, plan.candidates, 0, probe);
  const backendOf = (a: Active): BackendInfo => ({
    engine: a.candidate.engine,
    executionProvider: a.candidate.executionProvider,
    profile: a.candidate.executionProvider === 'webgpu' ? 'browser-webgpu' : 'browser-wasm',
    artifact: {
      file: a.candidate.artifact.file,
      target: a.candidate.artifact.target,
      precision: a.candidate.artifact.precision,
      runtime: a.candidate.artifact.runtime,
      sha256: a.candidate.artifact.sha256,
      size_bytes: a.candidate.artifact.size_bytes,
    },
    reason: a.candidate.reason,
    fallbacks: [...fallbacks],
    skipped: plan.skipped,
    notes: plan.notes,
    webgpu: capabilities.webgpu,
    cache: a.cache,
    probe: a.probe,
    ...(a.agreement ? { agreement: a.agreement } : {}),
    signedBy,
    timings: { total_ms: now() - started, ...a.timings },
  });
  return new EdgefleetModel({
    manifest,
    active,
    backend: backendOf(active),
    now,
    // An unprobed artifact that fails its first real run hands over to the next candidate.
    async fallBack(failed, error, input) {
      fallbacks.push({
        file: failed.candidate.artifact.file,
        engine: failed.candidate.engine,
        executionProvider: failed.candidate.executionProvider,
        stage: 'first-run',
        error: describeError(error),
      });
      const next = await activate(ctx, plan.candidates, failed.index + 1, {
        inputs: (artifact) => ({ kind: 'caller-input', feeds: prepareInputs(input, manifest, artifact) }),
      });
      return { active: next, backend: backendOf(next) };
    },
  });
}

/** The bundle's smoke test as a probe, else zeros shaped like the inputs, else no probe at all. */
async function buildProbe(
  manifest: BundleManifest,
  options: LoadFromManifestOptions,
  cache: ArtifactCache | undefined,
): Promise<Probe | undefined> {
  const zeros = (artifact: BundleManifest['artifacts'][number]) => {
    const feeds = syntheticInputs(specsOf(manifest, artifact).inputs);
    return feeds ? { kind: 'synthetic' as const, feeds } : undefined;
  };
  const synthetic = (): Probe | undefined =>
    syntheticInputs(manifest.inputs) ? { inputs: zeros } : undefined;
  if (options.probe === 'none') return undefined;
  if (options.probe === 'zeros' || !manifest.smokeTest) return synthetic();
  const ref = manifest.smokeTest;
  const { bytes } = await getVerifiedArtifact(ref.sha256, ref.size_bytes, options.fetchArtifact, cache);
  let file: SmokeTestFile;
  try {
    file = smokeTestFile.parse(JSON.parse(new TextDecoder().decode(bytes)));
  } catch {
    return synthetic(); // a signed but unreadable smoke test: probe with zeros instead
  }
  const inputs: Record<string, { data: Tensor['data']; shape: number[] }> = {};
  for (const [name, encoded] of Object.entries(file.inputs)) {
    const t = decodeTensor(encoded);
    inputs[name] = { data: t.data as Tensor['data'], shape: t.shape };
  }
  return {
    inputs: (artifact) => {
      try {
        return { kind: 'smoke-test', feeds: prepareInputs(inputs, manifest, artifact) };
      } catch {
        return zeros(artifact); // the sample does not fit this artifact's I/O
      }
    },
    expected: file.expected,
  };
}
