/**
 * Models on disk. Each slot (model name) has a `slot.json` naming the active and previous versions;
 * it is replaced atomically, so a power cut leaves either the old or the new choice, never half of
 * one. Artifacts live in their own version directories and are only ever referenced once complete.
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { ArtifactEntry } from '@edgefleet/bundle';
import type { InstalledModel } from '@edgefleet/protocol';
import { fsyncDir, readJson, writeFileAtomic } from '../files.ts';

export interface Probation {
  startedAt: string;
  /** Agent starts while this model was active and still on probation. */
  boots: number;
  passedAt: string | null;
}

export interface InstalledEntry extends InstalledModel {
  precision: string;
  deploymentId: string;
  /** Directory of this version, relative to the slot directory. */
  dir: string;
  artifact: ArtifactEntry;
  probation: Probation | null;
}

export interface SlotState {
  active: InstalledEntry | null;
  previous: InstalledEntry | null;
  /** Versions that were active here at some point (a rollback may return to them). */
  history: string[];
  /** Deployments that failed on this device: not retried for the same artifact. */
  failed: { deploymentId: string; sha256: string; code: string; message: string; at: string }[];
}

const emptySlot = (): SlotState => ({ active: null, previous: null, history: [], failed: [] });

export class ModelStore {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = join(dataDir, 'models');
  }

  slotDir(slot: string): string {
    return join(this.root, slot);
  }

  /** Absolute path of an installed entry's artifact file. */
  artifactPath(slot: string, entry: InstalledEntry): string {
    return join(this.slotDir(slot), entry.dir, basename(entry.artifact.file));
  }

  versionPath(slot: string, entry: Pick<InstalledEntry, 'dir'>, file: string): string {
    return join(this.slotDir(slot), entry.dir, file);
  }

  async slots(): Promise<string[]> {
    const names = await readdir(this.root).catch(() => [] as string[]);
    const out: string[] = [];
    for (const name of names) if ((await this.read(name)).active) out.push(name);
    return out;
  }

  async read(slot: string): Promise<SlotState> {
    return {
      ...emptySlot(),
      ...((await readJson<SlotState>(join(this.slotDir(slot), 'slot.json')).catch(() => undefined)) ?? {}),
    };
  }

  async write(slot: string, state: SlotState): Promise<void> {
    await writeFileAtomic(join(this.slotDir(slot), 'slot.json'), `${JSON.stringify(state, null, 2)}\n`);
  }

  /**
   * Move a verified download and its companions into a fresh version directory. The directory is
   * written under a temporary name and renamed when complete.
   */
  async stage(
    slot: string,
    dirName: string,
    files: { name: string; from?: string; data?: string | Uint8Array }[],
  ): Promise<string> {
    const slotDir = this.slotDir(slot);
    const finalDir = join(slotDir, dirName);
    const tempDir = join(slotDir, `.staging-${dirName}`);
    await rm(tempDir, { recursive: true, force: true });
    await mkdir(tempDir, { recursive: true });
    for (const f of files) {
      const target = join(tempDir, f.name);
      if (f.from) await rename(f.from, target);
      else await writeFileAtomic(target, f.data ?? '');
    }
    await fsyncDir(tempDir);
    await rm(finalDir, { recursive: true, force: true });
    await rename(tempDir, finalDir);
    await fsyncDir(slotDir);
    return dirName;
  }

  /** Make `entry` active; the current active becomes previous. */
  async activate(slot: string, entry: InstalledEntry): Promise<SlotState> {
    const state = await this.read(slot);
    const previous =
      state.active && state.active.sha256 !== entry.sha256
        ? { ...state.active, probation: null }
        : state.previous;
    const history = state.history.includes(entry.version) ? state.history : [...state.history, entry.version];
    const next: SlotState = { ...state, active: entry, previous, history };
    await this.write(slot, next);
    return next;
  }

  /** Return to the previous version, remembering why the active one failed. */
  async revert(slot: string, failure: { code: string; message: string }): Promise<SlotState> {
    const state = await this.read(slot);
    const failed = state.active
      ? [
          ...state.failed,
          {
            deploymentId: state.active.deploymentId,
            sha256: state.active.sha256,
            ...failure,
            at: new Date().toISOString(),
          },
        ]
      : state.failed;
    const next: SlotState = { ...state, active: state.previous, previous: null, failed: failed.slice(-20) };
    await this.write(slot, next);
    return next;
  }

  async recordFailure(slot: string, failure: SlotState['failed'][number]): Promise<void> {
    const state = await this.read(slot);
    await this.write(slot, { ...state, failed: [...state.failed, failure].slice(-20) });
  }

  async clear(slot: string): Promise<void> {
    const state = await this.read(slot);
    await this.write(slot, { ...state, active: null, previous: state.active ?? state.previous });
  }

  /** Delete version directories neither active nor previous. */
  async prune(slot: string): Promise<void> {
    const state = await this.read(slot);
    const keep = new Set([state.active?.dir, state.previous?.dir].filter(Boolean));
    for (const name of await readdir(this.slotDir(slot)).catch(() => [] as string[])) {
      if (name === 'slot.json' || keep.has(name) || name.startsWith('.')) continue;
      await rm(join(this.slotDir(slot), name), { recursive: true, force: true });
    }
  }
}
