/**
 * `load({ hub, model, token })`: the hub flow around the hub-free core. Resolves the version, gets
 * the signed manifest and the keys to check it with, fetches artifacts by sha256, and, when the hub
 * enrolls browsers, reports stats windows and what runs as this browser's device.
 */
import { compareVersions } from '@edgefleet/bundle';
import type { ReportedState, TrustedKey } from '@edgefleet/protocol';
import type { ArtifactCache } from './artifact-store.ts';
import { type Capabilities, detectCapabilities } from './capabilities.ts';
import { type DeviceCredentials, ensureEnrolled, forgetCredentials, type StorageLike } from './enrollment.ts';
import { WebError } from './errors.ts';
import { type HubClient, hubClient } from './hub-client.ts';
import { type BackendInfo, loadFromManifest, type ProbeMode, type Runtimes } from './model.ts';
import type { DevicePreference } from './plan.ts';
import type { EdgefleetModel } from './session.ts';
import { createStatsReporter, type WindowAccumulator } from './stats.ts';
import { SDK_VERSION } from './version.ts';

export interface ReportOptions {
  /** Enrollment token for this browser; `token` when absent. */
  enrollToken?: string;
  /** The device name shown in the fleet. */
  name?: string;
  /** How often a stats window is sent; the hub's suggestion, else 60 s. */
  windowMs?: number;
  accumulator?: () => WindowAccumulator;
}

export interface LoadOptions {
  /** Base URL of the hub, e.g. https://hub.example.com. */
  hub: string;
  model: string;
  /** Highest published version when absent. */
  version?: string;
  /** Bearer token that may read the model (viewer or above). */
  token: string;
  device?: DevicePreference;
  artifact?: string;
  /** Pin the keys a manifest must be signed by; else the enrollment's keys, else the hub's /keys. */
  trustedKeys?: TrustedKey[];
  /** Report stats windows as an enrolled browser device (default on); `false` to stay anonymous. */
  report?: boolean | ReportOptions;
  runtimes: Runtimes;
  cache?: ArtifactCache | false;
  capabilities?: Capabilities;
  probe?: ProbeMode;
  fetch?: typeof fetch;
  /** Where device credentials and the stats sequence live; localStorage by default. */
  storage?: StorageLike;
}

/** Load a model version from the hub and start it in this browser. */
export async function load(options: LoadOptions): Promise<EdgefleetModel> {
  for (const field of ['hub', 'model', 'token'] as const) {
    if (typeof options[field] !== 'string' || options[field] === '')
      throw new WebError('WEB_OPTIONS_INVALID', `load() needs a "${field}"`, { details: { field } });
  }
  const client = hubClient({ hub: options.hub, ...(options.fetch ? { fetch: options.fetch } : {}) });
  const storage = options.storage ?? defaultStorage();
  const capabilities =
    options.capabilities ?? (await detectCapabilities({ webgpu: options.device !== 'wasm' }));
  const report =
    options.report === false ? undefined : options.report === true || !options.report ? {} : options.report;
  const enrollment = report
    ? await ensureEnrolled(
        client,
        options.hub,
        report.enrollToken ?? options.token,
        capabilities,
        storage,
        report.name,
      )
    : ({ enrolled: false, reason: 'reporting turned off by the caller' } as const);

  const version =
    options.version ?? latest(await client.versions(options.model, options.token), options.model);
  const trustedKeys =
    options.trustedKeys ??
    (enrollment.enrolled ? enrollment.credentials.trustedKeys : await client.keys(options.token));
  const { manifestBytes, signature } = await client.manifest(options.model, version, options.token);
  const model = await loadFromManifest(manifestBytes, signature, {
    trustedKeys,
    fetchArtifact: (sha256) => client.artifact(sha256, options.token),
    runtimes: options.runtimes,
    capabilities,
    ...(options.cache !== undefined ? { cache: options.cache } : {}),
    ...(options.device ? { device: options.device } : {}),
    ...(options.artifact !== undefined ? { artifact: options.artifact } : {}),
    ...(options.probe ? { probe: options.probe } : {}),
  });
  if (enrollment.enrolled && report) {
    startReporting(model, client, options.hub, enrollment.credentials, report, storage, capabilities);
  } else if (!enrollment.enrolled) {
    model.reporting = { ...model.reporting, enabled: false, reason: enrollment.reason };
  }
  return model;
}

/** The highest version, preferring releases over pre-releases. */
function latest(versions: string[], model: string): string {
  const sorted = [...versions].sort(compareVersions);
  const releases = sorted.filter((v) => !v.includes('-'));
  const pick = releases[releases.length - 1] ?? sorted[sorted.length - 1];
  if (!pick) throw new WebError('WEB_MODEL_NOT_FOUND', `model ${model} has no published version`);
  return pick;
}

function startReporting(
  model: EdgefleetModel,
  client: HubClient,
  hub: string,
  device: DeviceCredentials,
  report: ReportOptions,
  storage: StorageLike | undefined,
  capabilities: Capabilities,
): void {
  const seqKey = `edgefleet:seq:${device.deviceId}`;
  const reporter = createStatsReporter({
    model: model.name,
    version: model.version,
    ...(report.accumulator ? { accumulator: report.accumulator } : {}),
    seq: {
      get: () => Number(storage?.getItem(seqKey) ?? 0) || 0,
      set: (value) => {
        try {
          storage?.setItem(seqKey, String(value));
        } catch {
          // storage blocked: the hub still dedupes within this page's life
        }
      },
    },
    async send(message, { keepalive }) {
      try {
        await client.postStats(device.deviceId, message, device.secret, keepalive);
      } catch (error) {
        // A revoked browser enrolls again on its next load rather than failing forever.
        if (error instanceof WebError && error.details?.status === 401) forgetCredentials(storage, hub);
        throw error;
      }
    },
  });
  const unobserve = model.observe((event) => reporter.observe(event));
  const timer = setInterval(() => void reporter.flush(), report.windowMs ?? device.statsWindowMs ?? 60_000);
  const onHide = () => {
    if (globalThis.document?.visibilityState === 'hidden') void reporter.flush({ keepalive: true });
  };
  globalThis.document?.addEventListener('visibilitychange', onHide);
  model.onDispose(async () => {
    clearInterval(timer);
    globalThis.document?.removeEventListener('visibilitychange', onHide);
    unobserve();
    await reporter.flush();
  });
  model.reporting = { enabled: true, deviceId: device.deviceId, flush: () => reporter.flush() };
  void client
    .putReported(device.deviceId, reportedState(model.backend, model, device, capabilities), device.secret)
    .catch(() => undefined); // older hubs lack the route; stats still flow
}

/** What this browser runs, in the shape agents report over MQTT. */
export function reportedState(
  backend: BackendInfo,
  model: EdgefleetModel,
  device: Pick<DeviceCredentials, 'profile'>,
  capabilities: Capabilities,
): ReportedState {
  const failedGpu = backend.fallbacks.find((f) => f.executionProvider === 'webgpu');
  return {
    desiredRevision: null,
    ts: new Date().toISOString(),
    agentVersion: `edgefleet-web/${SDK_VERSION}`,
    profile: device.profile ?? backend.profile,
    models: {
      [model.name]: {
        active: {
          name: model.name,
          version: model.version,
          sha256: backend.artifact.sha256,
          target: backend.artifact.target,
          runtime: `${backend.engine}/${backend.executionProvider}`,
          since: new Date().toISOString(),
        },
        previous: null,
        deployment: null,
      },
    },
    runtimes: [
      {
        name: 'onnxruntime-web/webgpu',
        available: capabilities.webgpu.available,
        ...(capabilities.webgpu.reason
          ? { reason: capabilities.webgpu.reason }
          : failedGpu
            ? {
                reason: `${failedGpu.file} failed at ${failedGpu.stage}: ${failedGpu.error.message}`.slice(
                  0,
                  500,
                ),
              }
            : {}),
      },
      { name: 'onnxruntime-web/wasm', available: true },
      { name: 'tfjs-tflite', available: true },
    ],
    transfers: [],
  };
}

function defaultStorage(): StorageLike | undefined {
  try {
    return globalThis.localStorage ?? undefined;
  } catch {
    return undefined; // access throws in sandboxed iframes
  }
}
