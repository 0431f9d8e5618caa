/**
 * Models on disk: staged version directories appear whole or not at all, the active choice is one
 * atomically replaced file, the previous version is kept for rollback, and older ones are pruned.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type InstalledEntry, ModelStore } from '../src/state/model-store.ts';

let dataDir: string;
let store: ModelStore;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'ef-store-'));
  store = new ModelStore(dataDir);
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

const entry = (version: string, dir = `${version}-abc`): InstalledEntry => ({
  name: 'm',
  version,
  sha256: (version.replace(/\D/g, '') + 'a'.repeat(64)).slice(0, 64),
  target: 'cpu',
  runtime: 'onnxruntime',
  precision: 'fp32',
  since: new Date().toISOString(),
  deploymentId: `d-${version}`,
  dir,
  artifact: {
    file: 'cpu/model.onnx',
    target: 'cpu',
    runtime: 'onnxruntime',
    precision: 'fp32',
    sha256: 'b'.repeat(64),
    size_bytes: 5,
    requires: [],
  },
  probation: null,
});

async function install(version: string) {
  const downloaded = join(dataDir, `${version}.part`);
  await writeFile(downloaded, `model ${version}`);
  const dir = await store.stage('m', `${version}-abc`, [
    { name: 'model.onnx', from: downloaded },
    { name: 'manifest.json', data: `{"version":"${version}"}` },
  ]);
  return store.activate('m', entry(version, dir));
}

describe('model store', () => {
  it('stages a version directory with its files, moving the download in', async () => {
    await install('1.0.0');
    const state = await store.read('m');
    expect(state.active?.version).toBe('1.0.0');
    const active = state.active as InstalledEntry;
    expect(await readFile(store.artifactPath('m', active), 'utf8')).toBe('model 1.0.0');
    expect(await readFile(store.versionPath('m', active, 'manifest.json'), 'utf8')).toContain('1.0.0');
    // The download was moved, not copied; no staging directory is left behind.
    expect((await readdir(dataDir)).some((n) => n.endsWith('.part'))).toBe(false);
    expect((await readdir(store.slotDir('m'))).sort()).toEqual(['1.0.0-abc', 'slot.json']);
  });

  it('keeps the previous version when switching, and remembers every version that ran', async () => {
    await install('1.0.0');
    const state = await install('1.1.0');
    expect(state.active?.version).toBe('1.1.0');
    expect(state.previous?.version).toBe('1.0.0');
    expect(state.history).toEqual(['1.0.0', '1.1.0']);
    // What a restarted agent reads back is the same choice.
    expect(await new ModelStore(dataDir).read('m')).toEqual(state);
    expect(await store.slots()).toEqual(['m']);
  });

  it('prunes versions that are neither active nor previous', async () => {
    await install('1.0.0');
    await install('1.1.0');
    await install('1.2.0');
    await mkdir(join(store.slotDir('m'), '.staging-1.3.0-abc'), { recursive: true });
    await store.prune('m');
    const left = (await readdir(store.slotDir('m'))).filter((n) => !n.startsWith('.')).sort();
    expect(left).toEqual(['1.1.0-abc', '1.2.0-abc', 'slot.json']);
    const state = await store.read('m');
    expect(await readFile(store.artifactPath('m', state.previous as InstalledEntry), 'utf8')).toBe(
      'model 1.1.0',
    );
  });

  it('reverts to the previous version and records why the active one failed', async () => {
    await install('1.0.0');
    await install('2.0.0');
    const state = await store.revert('m', { code: 'ERROR_RATE_SPIKE', message: 'too many errors' });
    expect(state.active?.version).toBe('1.0.0');
    expect(state.previous).toBeNull();
    expect(state.failed).toEqual([
      expect.objectContaining({ deploymentId: 'd-2.0.0', code: 'ERROR_RATE_SPIKE' }),
    ]);
    expect((await store.read('m')).active?.version).toBe('1.0.0');
  });

  it('replaces slot.json atomically: a crash mid-write leaves the old choice readable', async () => {
    await install('1.0.0');
    // A writer killed before its rename leaves only a temp file beside slot.json.
    await writeFile(join(store.slotDir('m'), '.deadbeef0000.tmp'), '{"active": {"version": "2.0');
    expect((await new ModelStore(dataDir).read('m')).active?.version).toBe('1.0.0');
    // And slot.json never holds anything but a whole JSON document.
    await install('1.1.0');
    const text = await readFile(join(store.slotDir('m'), 'slot.json'), 'utf8');
    expect(JSON.parse(text).active.version).toBe('1.1.0');
  });

  it('re-staging a version replaces a half-built staging directory from a crash', async () => {
    const slotDir = store.slotDir('m');
    await mkdir(join(slotDir, '.staging-1.0.0-abc'), { recursive: true });
    await writeFile(join(slotDir, '.staging-1.0.0-abc', 'model.onnx'), 'half');
    await install('1.0.0');
    const active = (await store.read('m')).active as InstalledEntry;
    expect(await readFile(store.artifactPath('m', active), 'utf8')).toBe('model 1.0.0');
    expect((await readdir(slotDir)).some((n) => n.startsWith('.staging'))).toBe(false);
  });

  it('clearing a slot keeps the last model as previous and stops listing it as active', async () => {
    await install('1.0.0');
    await store.clear('m');
    const state = await store.read('m');
    expect(state.active).toBeNull();
    expect(state.previous?.version).toBe('1.0.0');
    expect(await store.slots()).toEqual([]);
  });

  it('reads an empty state for a slot it never saw', async () => {
    expect(await store.read('nothing')).toEqual({ active: null, previous: null, history: [], failed: [] });
    expect(await store.slots()).toEqual([]);
  });
});
