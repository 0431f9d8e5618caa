/**
 * Reconciling the desired state: for each slot whose active model differs from what the hub wants,
 * verify the signed manifest, download (resumable), verify the hash, stage, load, smoke-test, then
 * switch atomically; report each step. Failures leave the running model untouched. Transient
 * failures (network, hub) retry with backoff; permanent ones are remembered and not retried.
 */

import { readFile } from 'node:fs/promises';
import { type BundleManifest, checkNotDowngrade, parseManifestBytes } from '@edgefleet/bundle';
import type {
  DeploymentStateName,
  DesiredModel,
  DesiredState,
  ErrorInfo,
  ReportedSlot,
} from '@edgefleet/protocol';
import type { AgentUpdater } from './agent-updater.ts';
import { AgentError } from './errors.ts';
import type { LoadedModels } from './inference/loaded-models.ts';
import { type InstallerDeps, prepareModel } from './installer.ts';
import type { ShadowRunner } from './shadow.ts';
import type { InstalledEntry } from './state/model-store.ts';

export interface DeploymentStatus {
  deploymentId: string;
  name: string;
  version: string;
  state: DeploymentStateName;
  progress?: { bytes: number; total: number };
  error?: ErrorInfo;
  updatedAt: string;
}

export interface ReconcilerDeps extends InstallerDeps {
  models: LoadedModels;
  shadows: ShadowRunner;
  /** Called whenever something reportable changed. */
  changed: () => void;
  /** Starts probation for a newly switched model. */
  onSwitched: (slot: string, entry: InstalledEntry, previous: InstalledEntry | null) => void;
  /** Follows `desired.agent` (self-update), after the models. */
  updater?: AgentUpdater;
}

export const errorInfo = (error: unknown): ErrorInfo =>
  error instanceof AgentError
    ? { code: error.code, message: error.message.slice(0, 2000) }
    : {
        code: (error as { code?: string }).code ?? 'INTERNAL',
        message: String((error as Error).message ?? error).slice(0, 2000),
      };

export class Reconciler {
  private desired: DesiredState | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs = 2000;
  readonly deployments = new Map<string, DeploymentStatus>();

  constructor(private readonly deps: ReconcilerDeps) {}

  get desiredRevision(): number | null {
    return this.desired?.revision ?? null;
  }

  /** Take a new desired state; reconciliation runs in the background, one pass at a time. */
  apply(desired: DesiredState): void {
    if (this.desired && desired.revision < this.desired.revision) return; // an older retained copy
    this.desired = desired;
    this.kick();
  }

  kick(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => {
      this.running = undefined;
    });
  }

  /** Resolves when no pass is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  stop(): void {
    clearTimeout(this.retryTimer);
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      const desired = this.desired;
      if (!desired) return;
      let transient = false;
      for (const [slot, want] of Object.entries(desired.models)) {
        try {
          await this.ensureSlot(slot, want);
        } catch (error) {
          transient ||= error instanceof AgentError && error.transient;
        }
        await this.deps.shadows.ensure(slot, want.shadow);
      }
      for (const slot of await this.deps.store.slots()) {
        if (!(slot in desired.models)) await this.removeSlot(slot);
      }
      for (const slot of this.deps.shadows.slots()) {
        if (!desired.models[slot]?.shadow) await this.deps.shadows.ensure(slot, undefined);
      }
      try {
        await this.deps.updater?.ensure(desired.agent);
      } catch (error) {
        transient ||= error instanceof AgentError && error.transient;
      }
      clearTimeout(this.retryTimer);
      if (transient) {
        this.retryTimer = setTimeout(() => this.kick(), this.retryDelayMs);
        this.retryDelayMs = Math.min(this.retryDelayMs * 2, 60_000);
      } else {
        this.retryDelayMs = 2000;
      }
    } while (this.again);
  }

  private setState(
    slot: string,
    want: DesiredModel,
    state: DeploymentStateName,
    extra: Partial<DeploymentStatus> = {},
  ): void {
    const previous = this.deployments.get(slot);
    const status: DeploymentStatus = {
      deploymentId: want.deploymentId,
      name: want.name,
      version: want.version,
      state,
      updatedAt: new Date().toISOString(),
      ...extra,
    };
    if (
      previous?.state === state &&
      previous.deploymentId === status.deploymentId &&
      !extra.progress &&
      !extra.error
    )
      return;
    this.deployments.set(slot, status);
    this.deps.changed();
  }

  private async ensureSlot(slot: string, want: DesiredModel): Promise<void> {
    const { store, logger } = this.deps;
    const state = await store.read(slot);
    const sha = want.artifact.sha256;
    if (state.active?.sha256 === sha && state.active.version === want.version) {
      if (!this.deps.models.get(slot)) await this.loadInstalled(slot, state.active);
      this.setState(slot, want, 'active');
      return;
    }
    const failed = state.failed.find((f) => f.deploymentId === want.deploymentId && f.sha256 === sha);
    if (failed) {
      this.setState(
        slot,
        want,
        failed.code === 'MODEL_CRASH_LOOP' || failed.code === 'ERROR_RATE_SPIKE' ? 'rolled-back' : 'failed',
        { error: { code: failed.code, message: failed.message } },
      );
      return;
    }
    try {
      await this.install(slot, want, state.active, state.history);
    } catch (error) {
      const info = errorInfo(error);
      if (error instanceof AgentError && error.transient) {
        logger.warn({ slot, version: want.version, error: info }, 'deployment step failed; will retry');
        const current = this.deployments.get(slot);
        this.setState(slot, want, current?.deploymentId === want.deploymentId ? current.state : 'pending', {
          error: info,
        });
        throw error;
      }
      logger.error(
        { slot, version: want.version, error: info },
        'deployment failed; keeping the current model',
      );
      await store.recordFailure(slot, {
        deploymentId: want.deploymentId,
        sha256: sha,
        ...info,
        at: new Date().toISOString(),
      });
      this.setState(slot, want, 'failed', { error: info });
    }
  }

  private async install(
    slot: string,
    want: DesiredModel,
    active: InstalledEntry | null,
    history: string[],
  ): Promise<void> {
    const { store, logger } = this.deps;
    const kept = (await store.read(slot)).previous;
    if (kept && kept.sha256 === want.artifact.sha256 && kept.version === want.version) {
      // Back to the version kept on disk (a rollback): no download; same checks on load.
      this.setState(slot, want, 'loading');
      checkNotDowngrade(active?.version, want.version, want.rollback ? { rollbackTo: history } : {});
      const entry: InstalledEntry = {
        ...kept,
        deploymentId: want.deploymentId,
        since: new Date().toISOString(),
        probation: null,
      };
      await this.loadInstalled(slot, entry);
      await store.activate(slot, entry);
      this.setState(slot, want, 'active');
      logger.info({ slot, version: want.version }, 'model active (restored the kept previous version)');
      return;
    }
    const { manifest, artifact, dir, session } = await prepareModel(this.deps, slot, want, {
      dirPrefix: '',
      installedVersion: active?.version,
      rollbackTo: want.rollback ? history : [],
      step: (state, extra) => this.setState(slot, want, state, extra),
    });

    // 5. Switch: one atomic rename of slot.json, then serve the new session.
    const entry: InstalledEntry = {
      name: want.name,
      version: want.version,
      sha256: artifact.sha256,
      target: artifact.target,
      runtime: artifact.runtime,
      precision: artifact.precision,
      since: new Date().toISOString(),
      deploymentId: want.deploymentId,
      dir,
      artifact,
      probation: { startedAt: new Date().toISOString(), boots: 0, passedAt: null },
    };
    await store.activate(slot, entry);
    this.deps.models.swap({ slot, entry, manifest, session });
    this.setState(slot, want, 'active');
    logger.info(
      { slot, version: want.version, backend: session.backend, precision: artifact.precision },
      'model active',
    );
    await store.prune(slot);
    this.deps.onSwitched(slot, entry, active);
  }

  /** Load an installed model (at start, or after a revert). */
  async loadInstalled(slot: string, entry: InstalledEntry): Promise<void> {
    const manifest: BundleManifest = parseManifestBytes(
      await readFile(this.deps.store.versionPath(slot, entry, 'manifest.json')),
    );
    const session = await this.deps.registry.load(
      this.deps.store.artifactPath(slot, entry),
      entry.artifact,
      manifest,
    );
    this.deps.models.swap({ slot, entry, manifest, session });
  }

  private async removeSlot(slot: string): Promise<void> {
    this.deps.models.remove(slot);
    await this.deps.store.clear(slot);
    this.deployments.delete(slot);
    this.deps.logger.info({ slot }, 'model removed (no longer desired)');
    this.deps.changed();
  }

  /** The per-slot part of the reported state. */
  async reportedSlots(): Promise<Record<string, ReportedSlot>> {
    const slots = new Set([
      ...(await this.deps.store.slots()),
      ...this.deployments.keys(),
      ...Object.keys(this.desired?.models ?? {}),
    ]);
    const out: Record<string, ReportedSlot> = {};
    for (const slot of slots) {
      const s = await this.deps.store.read(slot);
      const view = (e: InstalledEntry | null) =>
        e
          ? {
              name: e.name,
              version: e.version,
              sha256: e.sha256,
              target: e.target,
              runtime: e.runtime,
              since: e.since,
            }
          : null;
      out[slot] = {
        active: view(s.active),
        previous: view(s.previous),
        deployment: this.deployments.get(slot) ?? null,
        shadow: this.deps.shadows.status(slot),
      };
    }
    return out;
  }
}
