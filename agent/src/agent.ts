/**
 * The agent: enroll once, then serve the active models (from disk, with or without a hub), follow
 * the desired state, and report health and state through the outbox.
 */
import { mkdir, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { EDGEFLEET_VERSION, encodeMessage, type ReportedState, topics } from '@edgefleet/protocol';
import pino, { type Logger } from 'pino';
import { AgentUpdater } from './agent-updater.ts';
import { ChunkReceiver } from './chunk-receiver.ts';
import { type Credentials, loadCredentials, saveCredentials } from './credentials.ts';
import { detectProfile, gatherFacts } from './detect.ts';
import { DriftStatsCollector, REFERENCE_PROFILE_FILE } from './drift-stats.ts';
import { AgentError } from './errors.ts';
import { type DownloadProgress, enroll, HubApi } from './hub-api.ts';
import { hubHttp } from './hub-http.ts';
import { LoadedModels } from './inference/loaded-models.ts';
import { InferenceMetrics } from './inference/metrics.ts';
import type { InferenceObserver } from './inference/observer.ts';
import { createInferenceServer } from './inference/server.ts';
import { DeviceLink } from './link.ts';
import { ProbationGuard } from './probation.ts';
import { Reconciler } from './reconciler.ts';
import { BackendRegistry, type InferenceBackend } from './runtime/backend.ts';
import { onnxBackend } from './runtime/onnx.ts';
import { edgeTpuBackend, tfliteBackend } from './runtime/tflite.ts';
import { ShadowRunner } from './shadow.ts';
import { ModelStore } from './state/model-store.ts';
import { Outbox } from './state/outbox.ts';
import { SequenceCounter } from './state/sequence.ts';
import { readHealth } from './telemetry.ts';

export interface AgentOptions {
  dataDir: string;
  /** Needed only for the first start (enrollment). */
  hub?: string;
  enrollToken?: string;
  name?: string;
  /** `auto` (default) or a profile id. */
  profile?: string;
  /** Local inference API. */
  port?: number;
  host?: string;
  /** A CA certificate (PEM file) the hub's HTTPS and MQTT TLS certificates chain to; pinned at enrollment. */
  caFile?: string;
  /** Override the broker URL the hub gave at enrollment. */
  mqttUrl?: string;
  /**
   * How artifacts arrive: `http` from the hub with Range resume, `mqtt` in chunks through the
   * broker, or `auto` (HTTP, falling back to MQTT when the hub's API is unreachable).
   */
  artifactTransport?: 'auto' | 'http' | 'mqtt';
  telemetryIntervalMs?: number;
  /** Drift statistics window (default 60 s; the hub's desired state may set it). */
  statsWindowMs?: number;
  /** …or this many predictions, whichever comes first (default 5,000). */
  statsWindowCount?: number;
  probationMs?: number;
  outboxMaxBytes?: number;
  /**
   * Self-update: where agent releases are staged (STATE/releases of a flashed install), and what to
   * do once one is staged (the CLI exits with 75 so systemd starts the launcher again). Without a
   * releases directory the agent reports that it cannot update itself.
   */
  releasesDir?: string;
  onRestartRequested?: (version: string) => void;
  /** Extra backends (e.g. TFLite) and observers (e.g. drift statistics). */
  backends?: InferenceBackend[];
  observers?: InferenceObserver[];
  logger?: Logger;
}

export interface RunningAgent {
  deviceId: string;
  name: string;
  port: number;
  credentials: Credentials;
  models: LoadedModels;
  reconciler: Reconciler;
  outbox: Outbox;
  /** Take and queue one telemetry sample now. */
  sampleTelemetry(): Promise<void>;
  /** Close the open drift-statistics windows now and queue them. */
  flushStats(): Promise<void>;
  stop(): Promise<void>;
}

async function ensureEnrolled(o: AgentOptions, logger: Logger): Promise<Credentials> {
  const existing = await loadCredentials(o.dataDir);
  if (existing) return existing;
  if (!o.hub || !o.enrollToken) {
    throw new AgentError(
      'NOT_ENROLLED',
      `no credentials in ${o.dataDir}: start once with --hub URL --enroll-token T`,
    );
  }
  const facts = await gatherFacts();
  const profile = o.profile && o.profile !== 'auto' ? o.profile : detectProfile(facts);
  const hub = o.hub.replace(/\/+$/, '');
  const caPem = o.caFile ? await readFile(o.caFile, 'utf8') : undefined;
  const response = await enroll(
    hub,
    { token: o.enrollToken, ...(o.name ? { name: o.name } : {}), profile, facts },
    hubHttp(caPem ? { ca: caPem } : {}),
  );
  const credentials = await saveCredentials(o.dataDir, hub, response, caPem);
  logger.info({ deviceId: response.deviceId, name: response.name, profile }, 'enrolled');
  return credentials;
}

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const logger =
    options.logger ?? pino({ name: 'edgefleet-agent', level: process.env.EDGEFLEET_LOG_LEVEL ?? 'info' });
  const dataDir = resolve(options.dataDir);
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const credentials = await ensureEnrolled({ ...options, dataDir }, logger);
  const deviceId = credentials.deviceId;

  const registry = new BackendRegistry();
  registry.register(onnxBackend());
  // TFLite beside onnxruntime: the Edge TPU first, its CPU twin when the accelerator is missing.
  registry.register(edgeTpuBackend());
  registry.register(tfliteBackend());
  for (const backend of options.backends ?? []) registry.register(backend);
  const metrics = new InferenceMetrics();
  const models = new LoadedModels(metrics, logger);
  for (const observer of options.observers ?? []) models.addObserver(observer);
  const store = new ModelStore(dataDir);
  const outbox = await Outbox.open(resolve(dataDir, 'outbox'), {
    maxBytes: options.outboxMaxBytes ?? 50 * 1024 * 1024,
  });
  const sequence = await SequenceCounter.open(dataDir);
  const driftStats = new DriftStatsCollector({
    logger,
    ...(options.statsWindowMs ? { windowMs: options.statsWindowMs } : {}),
    ...(options.statsWindowCount ? { maxCount: options.statsWindowCount } : {}),
    profilePath: (m) => store.versionPath(m.slot, m.entry, REFERENCE_PROFILE_FILE),
    emit: async (window) => {
      const seq = await sequence.next('stats');
      await outbox.append(topics.stats(deviceId), encodeMessage({ windows: [{ seq, ...window }] }));
      void link?.drain();
    },
  });
  models.addObserver(driftStats);
  const caPem = options.caFile ? await readFile(options.caFile, 'utf8') : credentials.caPem;
  const hub = new HubApi(credentials.hub, credentials.secret, hubHttp(caPem ? { ca: caPem } : {}));
  let link: DeviceLink | undefined;
  let reportTimer: NodeJS.Timeout | undefined;
  const profile = credentials.profile;

  const currentReported = async (): Promise<ReportedState> => ({
    desiredRevision: reconciler.desiredRevision,
    ts: new Date().toISOString(),
    agentVersion: EDGEFLEET_VERSION,
    profile,
    models: await reconciler.reportedSlots(),
    runtimes: (await registry.status()).map((s) => ({
      name: s.name,
      available: s.available,
      ...(s.reason ? { reason: s.reason } : {}),
    })),
    transfers: chunks.transfers(),
    agentUpdate: updater.reported(),
  });
  // Coalesce bursts of state changes (download progress) into one retained message.
  const changed = () => {
    if (reportTimer) return;
    reportTimer = setTimeout(() => {
      reportTimer = undefined;
      currentReported()
        .then((r) => link?.publishReported(r))
        .catch((error: unknown) => logger.warn({ err: error }, 'reporting state failed'));
    }, 200);
  };

  let guard: ProbationGuard | undefined;
  const chunks = new ChunkReceiver(logger, () => changed());
  const transport = options.artifactTransport ?? 'auto';
  const fetchBlob = async (
    sha256: string,
    part: string,
    size: number,
    onProgress: (p: DownloadProgress) => void,
  ) => {
    if (transport === 'mqtt') return chunks.fetch(sha256, part, size, onProgress);
    try {
      await hub.download(sha256, part, size, onProgress);
    } catch (error) {
      if (
        transport === 'auto' &&
        error instanceof AgentError &&
        error.code === 'HUB_UNREACHABLE' &&
        link?.connected
      ) {
        logger.warn(
          { sha256: sha256.slice(0, 12) },
          'hub API unreachable; receiving the artifact over MQTT instead',
        );
        return chunks.fetch(sha256, part, size, onProgress);
      }
      throw error;
    }
  };
  const installerDeps = {
    dataDir,
    store,
    hub,
    fetchBlob,
    registry,
    trustedKeys: () => credentials.trustedKeys,
    logger,
  };
  const shadows = new ShadowRunner({ ...installerDeps, models, changed });
  const updater = new AgentUpdater({
    dataDir,
    releasesDir: options.releasesDir,
    runningVersion: EDGEFLEET_VERSION,
    trustedKeys: installerDeps.trustedKeys,
    fetchBlob,
    logger,
    changed,
    restart: async (version) => {
      // Say "staged" before going: the next report comes from the new release.
      await currentReported()
        .then((r) => link?.publishReported(r))
        .catch(() => undefined);
      if (options.onRestartRequested) options.onRestartRequested(version);
      else logger.warn({ version }, 'agent release staged; restart the agent to run it');
    },
  });
  const reconciler: Reconciler = new Reconciler({
    ...installerDeps,
    models,
    shadows,
    changed,
    onSwitched: (slot, entry) => guard?.watch(slot, entry),
    updater,
  });
  guard = new ProbationGuard({
    store,
    models,
    metrics,
    reconciler,
    logger,
    probationMs: options.probationMs ?? 10 * 60_000,
  });

  // Serve what is installed before talking to anyone: the device works offline.
  for (const slot of await store.slots()) {
    const entry = await guard.atBoot(slot);
    if (!entry) continue;
    try {
      await reconciler.loadInstalled(slot, entry);
      guard.watch(slot, entry);
      logger.info({ slot, version: entry.version }, 'model active (loaded from disk)');
    } catch (error) {
      logger.error({ err: error, slot, version: entry.version }, 'installed model does not load');
    }
  }

  const server = createInferenceServer(models);
  server.listen(options.port ?? 8081, options.host ?? '127.0.0.1');
  await new Promise<void>((ok, fail) => {
    server.once('listening', () => ok());
    server.once('error', fail);
  });
  const port = (server.address() as AddressInfo).port;

  let invalidReported = 0;
  // Samples taken in the background; stop() waits for them so nothing writes after shutdown.
  const samplesInFlight = new Set<Promise<void>>();
  const sampleTelemetry = (): Promise<void> => {
    const taking = takeSample().finally(() => samplesInFlight.delete(taking));
    samplesInFlight.add(taking);
    return taking;
  };
  const takeSample = async () => {
    const health = await readHealth(dataDir);
    const inference = metrics.take();
    const shadowStats = models.takeShadowStats();
    const stats = await outbox.stats();
    const notes = [
      ...(stats.dropped > 0 ? [`outbox dropped ${stats.dropped} old messages over its bound`] : []),
    ];
    // Unavailable backends are in the reported state (`runtimes`); a note only when a model runs on a
    // fallback because of one, so a device without a Coral is not told so every interval.
    for (const m of models.list())
      if (m.session.fallback)
        notes.push(
          `${m.slot}: runs ${m.session.fallback.to} instead of ${m.session.fallback.from} (${m.session.fallback.reason})`,
        );
    const invalid = (link?.invalidMessages ?? 0) - invalidReported;
    if (invalid > 0) notes.push(`${invalid} invalid MQTT messages ignored since the last sample`);
    invalidReported += invalid;
    const sample = {
      seq: await sequence.next('telemetry'),
      ts: new Date().toISOString(),
      ...health,
      inference,
      // The telemetry schema takes at most 20 notes of 200 characters: a longer one (a fallback's
      // reason quoting the runtime's error) would get the whole sample refused by the hub.
      ...(notes.length
        ? { notes: notes.slice(0, 20).map((n) => (n.length > 200 ? `${n.slice(0, 199)}…` : n)) }
        : {}),
      ...(shadowStats.length ? { shadow: shadowStats } : {}),
    };
    await outbox.append(topics.telemetry(deviceId), encodeMessage({ samples: [sample] }));
    void link?.drain();
  };

  link = new DeviceLink({
    url: options.mqttUrl ?? credentials.mqtt.url,
    ...(caPem ? { ca: caPem } : {}),
    deviceId,
    secret: credentials.secret,
    logger,
    outbox,
    onDesired: (desired) => {
      if (desired.config.telemetryIntervalMs && desired.config.telemetryIntervalMs !== intervalMs)
        scheduleTelemetry(desired.config.telemetryIntervalMs);
      if (desired.config.statsWindowMs) driftStats.setWindowMs(desired.config.statsWindowMs);
      reconciler.apply(desired);
    },
    onCommand: async (name) => {
      if (name === 'ping')
        return { pong: true, agentVersion: EDGEFLEET_VERSION, uptimeS: Math.round(process.uptime()) };
      if (name === 'reconcile') {
        reconciler.kick();
        return { reconciling: true };
      }
      if (name === 'telemetry') {
        await sampleTelemetry();
        return { sampled: true };
      }
      if (name === 'stats') {
        await driftStats.flush();
        return { flushed: true };
      }
      throw new AgentError('BAD_INPUT', `unknown command "${name}"`);
    },
    currentReported,
    onChunk: (sha256, payload) => chunks.onChunk(sha256, payload),
  });
  link.start();

  let intervalMs = options.telemetryIntervalMs ?? 10_000;
  let telemetryTimer: NodeJS.Timeout | undefined;
  const scheduleTelemetry = (ms: number) => {
    intervalMs = ms;
    clearInterval(telemetryTimer);
    telemetryTimer = setInterval(() => {
      sampleTelemetry().catch((error: unknown) => logger.warn({ err: error }, 'telemetry sample failed'));
    }, ms);
  };
  scheduleTelemetry(intervalMs);
  driftStats.start();
  // The first sample right away (fresh health in the fleet view), without holding up start-up.
  sampleTelemetry().catch((error: unknown) => logger.warn({ err: error }, 'first telemetry sample failed'));
  logger.info(
    { deviceId, name: credentials.name, inference: `http://${options.host ?? '127.0.0.1'}:${port}/v2` },
    'agent ready',
  );

  let stopped = false;
  return {
    deviceId,
    name: credentials.name,
    port,
    credentials,
    models,
    reconciler,
    outbox,
    sampleTelemetry,
    flushStats: () => driftStats.flush(),
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(telemetryTimer);
      clearTimeout(reportTimer);
      await Promise.allSettled([...samplesInFlight]);
      await driftStats.stop(); // open statistics windows go into the outbox, and out below
      guard?.stop();
      reconciler.stop();
      chunks.stop();
      // Telemetry still queued goes out now if the broker is there (bounded: shutdown must not hang).
      await link?.flush(5000);
      await link?.stop();
      await new Promise<void>((done) => server.close(() => done()));
      await models.closeAll();
    },
  };
}
