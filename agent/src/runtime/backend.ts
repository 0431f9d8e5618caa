/**
 * Inference backends behind one small interface, registered with a priority (as onnxruntime's
 * backend registry does): the agent picks the best available backend that can run an artifact and
 * falls back to the next one when loading fails, recording why.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ArtifactEntry, BundleManifest, PlainTensor, TensorSpec } from '@edgefleet/bundle';

export interface ModelSession {
  /** The backend that runs it, e.g. "onnxruntime-cpu" or "tflite+edgetpu". */
  readonly backend: string;
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  run(feeds: Record<string, PlainTensor>): Promise<Record<string, PlainTensor>>;
  close(): Promise<void>;
  /**
   * Set when the artifact asked for could not run and its `fallback` (e.g. the CPU twin of an
   * `_edgetpu.tflite`) runs instead: which file runs, and why (e.g. "accelerator missing: …").
   */
  fallback?: { from: string; to: string; reason: string };
}

export interface InferenceBackend {
  readonly name: string;
  /** Higher runs first. */
  readonly priority: number;
  /** Whether this machine can use the backend at all (native module present, accelerator plugged in). */
  availability(): Promise<{ available: boolean; reason?: string }>;
  canRun(artifact: ArtifactEntry): boolean;
  load(path: string, artifact: ArtifactEntry, manifest: BundleManifest): Promise<ModelSession>;
}

export interface BackendStatus {
  name: string;
  available: boolean;
  reason?: string;
}

export class BackendRegistry {
  private readonly backends: InferenceBackend[] = [];
  private statuses: BackendStatus[] | undefined;

  register(backend: InferenceBackend): void {
    this.backends.push(backend);
    this.backends.sort((a, b) => b.priority - a.priority);
    this.statuses = undefined;
  }

  /** Each backend's availability (checked once; reported to the hub as the device's runtimes). */
  async status(): Promise<BackendStatus[]> {
    this.statuses ??= await Promise.all(
      this.backends.map(async (b) => {
        try {
          return { name: b.name, ...(await b.availability()) };
        } catch (error) {
          return { name: b.name, available: false, reason: (error as Error).message };
        }
      }),
    );
    return this.statuses;
  }

  /**
   * Load with the best backend that can; when none can and the artifact names a fallback that is on
   * disk beside it (the Edge TPU model's CPU twin), load that and record why. Throws with every
   * backend's reason when nothing loads.
   */
  async load(path: string, artifact: ArtifactEntry, manifest: BundleManifest): Promise<ModelSession> {
    try {
      return await this.loadOne(path, artifact, manifest);
    } catch (error) {
      const twin = manifest.artifacts.find((a) => a.file === artifact.fallback && a.file !== artifact.file);
      if (!twin) throw error;
      const twinPath = join(dirname(path), basename(twin.file));
      const reason = (error as Error).message;
      if (!existsSync(twinPath))
        throw Object.assign(new Error(`${reason}; its fallback ${twin.file} is not on the device`), {
          backendReasons: (error as { backendReasons?: string[] }).backendReasons ?? [],
        });
      const session = await this.loadOne(twinPath, twin, manifest);
      session.fallback = { from: artifact.file, to: twin.file, reason };
      return session;
    }
  }

  private async loadOne(
    path: string,
    artifact: ArtifactEntry,
    manifest: BundleManifest,
  ): Promise<ModelSession> {
    const statuses = await this.status();
    const reasons: string[] = [];
    for (const backend of this.backends) {
      const status = statuses.find((s) => s.name === backend.name);
      if (!backend.canRun(artifact)) continue;
      if (!status?.available) {
        reasons.push(`${backend.name}: ${status?.reason ?? 'unavailable'}`);
        continue;
      }
      try {
        return await backend.load(path, artifact, manifest);
      } catch (error) {
        reasons.push(`${backend.name}: ${(error as Error).message}`);
      }
    }
    const detail =
      reasons.length > 0
        ? reasons.join('; ')
        : `no backend runs ${artifact.runtime}/${artifact.target} artifacts`;
    throw Object.assign(new Error(detail), { backendReasons: reasons });
  }
}
