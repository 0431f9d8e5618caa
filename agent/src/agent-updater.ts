/**
 * Following `desired.agent`: fetch the agent release the hub wants (the same resumable HTTP or MQTT
 * transfer models use), verify and stage it (self-update.ts), then ask to be restarted into it. The
 * launcher starts it on probation and reverts it if it keeps crashing; the next agent to run
 * reports how that went. Only an agent installed by `edgefleet flash` (which has a releases
 * directory and a launcher) can update itself; any other says so instead of trying.
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fromBase64, signatureFile } from '@edgefleet/bundle';
import type {
  AgentUpdateState,
  DesiredAgent,
  ErrorInfo,
  ReportedAgentUpdate,
  TrustedKey,
} from '@edgefleet/protocol';
import type { Logger } from 'pino';
import { AgentError } from './errors.ts';
import type { InstallerDeps } from './installer.ts';
import { errorInfo } from './reconciler.ts';
import { releaseState, stageRelease, UpdateError, verifyRelease } from './self-update.ts';

export interface AgentUpdaterDeps {
  dataDir: string;
  /** STATE/releases of a flashed install; undefined when the agent runs from npm or a checkout. */
  releasesDir: string | undefined;
  /** The release this process runs. */
  runningVersion: string;
  trustedKeys: () => TrustedKey[];
  fetchBlob: InstallerDeps['fetchBlob'];
  logger: Logger;
  changed: () => void;
  /** A release is staged: restart into it (the CLI exits so the service manager starts the launcher). */
  restart: (version: string) => Promise<void>;
}

export class AgentUpdater {
  private current: ReportedAgentUpdate | null = null;
  /** Deployments that failed for good in this process (bad signature, wrong arch…): not retried. */
  private readonly failed = new Map<string, ErrorInfo>();

  constructor(private readonly deps: AgentUpdaterDeps) {}

  /** What to report as `agentUpdate`. */
  reported(): ReportedAgentUpdate | null {
    return this.current;
  }

  /** Work towards `want`; transient failures (network, hub) throw for the reconciler to retry. */
  async ensure(want: DesiredAgent | undefined): Promise<void> {
    if (!want) return this.set(null);
    const { releasesDir, runningVersion, logger } = this.deps;
    if (want.version === runningVersion) return this.set(want, 'active');
    const failed = this.failed.get(want.deploymentId);
    if (failed) return this.set(want, 'failed', { error: failed });
    if (!releasesDir)
      return this.fail(
        want,
        new UpdateError(
          'UPDATE_REFUSED',
          'this agent was not installed by `edgefleet flash`, so it has no launcher to restart it into a new release; update it the way it was installed',
        ),
      );
    const state = await releaseState(releasesDir);
    if (state.failed.includes(want.version))
      return this.set(want, 'rolled-back', {
        error: {
          code: 'UPDATE_CRASH_LOOP',
          message: `release ${want.version} kept crashing on probation; the launcher went back to ${runningVersion}`,
        },
      });
    // Staged before a restart that has not happened (the agent was started outside its launcher).
    if (state.current === want.version) return this.set(want, 'staged');
    if (state.pending)
      throw new AgentError(
        'DOWNLOAD_FAILED',
        `release ${state.pending} is still on probation; ${want.version} waits until it is confirmed`,
        { transient: true },
      );

    const verify = {
      releasesDir,
      manifestBytes: fromBase64(want.manifest),
      signature: signatureFile.safeParse(want.signature).data,
      trustedKeys: this.deps.trustedKeys(),
    };
    const downloads = join(this.deps.dataDir, 'downloads');
    const part = join(downloads, `${want.artifact.sha256}.part`);
    try {
      await mkdir(downloads, { recursive: true });
      const manifest = await verifyRelease(verify);
      if (manifest.version !== want.version || manifest.sha256 !== want.artifact.sha256)
        throw new UpdateError(
          'UPDATE_INVALID',
          `the signed manifest is ${manifest.version} (${manifest.sha256.slice(0, 12)}), the desired state names ${want.version} (${want.artifact.sha256.slice(0, 12)})`,
        );
      this.set(want, 'downloading', { progress: { bytes: 0, total: want.artifact.size_bytes } });
      await this.deps.fetchBlob(want.artifact.sha256, part, want.artifact.size_bytes, (progress) =>
        this.set(want, 'downloading', { progress }),
      );
      await stageRelease({ ...verify, archivePath: part });
    } catch (error) {
      // A transient failure keeps the partial download to resume; anything else means bad bytes.
      if (error instanceof AgentError && error.transient) throw error;
      await rm(part, { force: true });
      return this.fail(want, error);
    }
    await rm(part, { force: true });
    logger.info({ version: want.version, from: runningVersion }, 'agent release staged; restarting into it');
    this.set(want, 'staged');
    await this.deps.restart(want.version);
  }

  private fail(want: DesiredAgent, error: unknown): void {
    const info = errorInfo(error);
    this.deps.logger.error(
      { version: want.version, error: info },
      'agent update failed; keeping this release',
    );
    this.failed.set(want.deploymentId, info);
    this.set(want, 'failed', { error: info });
  }

  private set(
    want: DesiredAgent | null,
    state?: AgentUpdateState,
    extra: Pick<ReportedAgentUpdate, 'progress' | 'error'> = {},
  ): void {
    const next: ReportedAgentUpdate | null =
      want && state
        ? {
            deploymentId: want.deploymentId,
            version: want.version,
            state,
            ...extra,
            updatedAt: new Date().toISOString(),
          }
        : null;
    const before = this.current;
    this.current = next;
    if (before?.state !== next?.state || before?.deploymentId !== next?.deploymentId || extra.progress)
      this.deps.changed();
  }
}
