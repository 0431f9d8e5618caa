/**
 * Getting a model version ready to run, without touching what runs now: verify the signed
 * manifest, fetch the artifact (resumable), stage it in its own directory, load it and pass the
 * bundle's smoke test. Used for the active model and for shadow candidates alike.
 */

import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type ArtifactEntry,
  BundleError,
  type BundleManifest,
  checkNotDowngrade,
  checkNotExpired,
  fromBase64,
  parseManifestBytes,
  signatureFile,
  smokeTestFile,
  verifyManifestSignature,
} from '@edgefleet/bundle';
import type { DeploymentStateName, DesiredModel, TrustedKey } from '@edgefleet/protocol';
import type { Logger } from 'pino';
import { REFERENCE_PROFILE_FILE } from './drift-stats.ts';
import { AgentError } from './errors.ts';
import type { DownloadProgress, HubApi } from './hub-api.ts';
import type { BackendRegistry, ModelSession } from './runtime/backend.ts';
import { runSmokeTest } from './smoke.ts';
import type { ModelStore } from './state/model-store.ts';

export interface InstallerDeps {
  dataDir: string;
  store: ModelStore;
  hub: HubApi;
  registry: BackendRegistry;
  trustedKeys: () => TrustedKey[];
  logger: Logger;
  /** Fetch a blob by sha256 into a `.part` file (HTTP with Range resume, or MQTT chunks). */
  fetchBlob: (
    sha256: string,
    partPath: string,
    size: number,
    onProgress: (p: DownloadProgress) => void,
  ) => Promise<void>;
}

export interface PreparedModel {
  manifest: BundleManifest;
  artifact: ArtifactEntry;
  /** The version directory, relative to the slot directory. */
  dir: string;
  session: ModelSession;
}

export interface PrepareOptions {
  /** Prefix of the version directory (`shadow-` keeps candidates apart from installs). */
  dirPrefix: string;
  installedVersion: string | undefined;
  rollbackTo: readonly string[];
  step: (state: DeploymentStateName, extra?: { progress?: DownloadProgress }) => void;
}

/** A signature carried in the desired state; malformed ones fail like any bad signature. */
function parseSignatureValue(value: unknown) {
  const parsed = signatureFile.safeParse(value);
  if (!parsed.success)
    throw new BundleError('BUNDLE_SIGNATURE_INVALID', 'the signature in the desired state is malformed');
  return parsed.data;
}

export async function prepareModel(
  deps: InstallerDeps,
  slot: string,
  want: Omit<DesiredModel, 'shadow'>,
  o: PrepareOptions,
): Promise<PreparedModel> {
  const { store, registry, logger } = deps;
  o.step('downloading', { progress: { bytes: 0, total: want.artifact.size_bytes } });

  // 1. The signed manifest, verified before anything else is trusted.
  const { manifestBytes, signature } =
    want.manifest && want.signature
      ? { manifestBytes: fromBase64(want.manifest), signature: parseSignatureValue(want.signature) }
      : await deps.hub.manifest(want.name, want.version);
  await verifyManifestSignature(manifestBytes, signature, deps.trustedKeys());
  const manifest = parseManifestBytes(manifestBytes);
  checkNotExpired(manifest, new Date());
  if (manifest.name !== want.name || manifest.version !== want.version) {
    throw new AgentError(
      'MANIFEST_MISMATCH',
      `manifest is ${manifest.name}@${manifest.version}, desired ${want.name}@${want.version}`,
    );
  }
  checkNotDowngrade(o.installedVersion, want.version, { rollbackTo: o.rollbackTo });
  const artifact = manifest.artifacts.find((a) => a.sha256 === want.artifact.sha256);
  if (!artifact)
    throw new AgentError(
      'ARTIFACT_NOT_IN_MANIFEST',
      `artifact ${want.artifact.sha256.slice(0, 12)} is not part of ${want.name}@${want.version}`,
    );

  // 2. Download (resumable) and verify.
  const downloads = join(deps.dataDir, 'downloads');
  await mkdir(downloads, { recursive: true });
  const part = join(downloads, `${artifact.sha256}.part`);
  await deps.fetchBlob(artifact.sha256, part, artifact.size_bytes, (progress) =>
    o.step('downloading', { progress }),
  );
  // Companion files named by the signed manifest, verified by sha256 like the artifact.
  const fetchCompanion = async (ref: { sha256: string; size_bytes: number } | undefined) => {
    if (!ref) return undefined;
    const companionPart = join(downloads, `${ref.sha256}.part`);
    await deps.fetchBlob(ref.sha256, companionPart, ref.size_bytes, () => undefined);
    const bytes = await readFile(companionPart);
    await rm(companionPart, { force: true });
    return bytes;
  };
  const smokeBytes = await fetchCompanion(manifest.smokeTest);
  const profileBytes = await fetchCompanion(manifest.referenceProfile);
  // An Edge TPU model brings its CPU twin: without the delegate, the twin is what runs.
  const twin =
    artifact.target === 'edgetpu' ? manifest.artifacts.find((a) => a.file === artifact.fallback) : undefined;
  const twinBytes = await fetchCompanion(twin);
  o.step('verifying');
  const smoke = smokeBytes
    ? smokeTestFile.parse(JSON.parse(new TextDecoder().decode(smokeBytes)))
    : undefined;

  // 3. Stage: a complete version directory, renamed into place.
  const dir = `${o.dirPrefix}${want.version}-${artifact.sha256.slice(0, 12)}`;
  const fileName = artifact.file.split('/').at(-1) as string;
  await store.stage(slot, dir, [
    { name: fileName, from: part },
    { name: 'manifest.json', data: manifestBytes },
    { name: 'signature.json', data: JSON.stringify(signature) },
    ...(smokeBytes ? [{ name: 'smoke-test.json', data: smokeBytes }] : []),
    ...(profileBytes ? [{ name: REFERENCE_PROFILE_FILE, data: profileBytes }] : []),
    ...(twin && twinBytes ? [{ name: twin.file.split('/').at(-1) as string, data: twinBytes }] : []),
  ]);
  o.step('staged');

  // 4. Load and smoke-test; whatever runs now keeps serving meanwhile.
  o.step('loading');
  let session: ModelSession;
  try {
    session = await registry.load(join(store.slotDir(slot), dir, fileName), artifact, manifest);
  } catch (cause) {
    throw new AgentError('MODEL_LOAD_FAILED', `the model does not load: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (smoke) {
    o.step('smoke-testing');
    try {
      const agreement = await runSmokeTest(session, smoke, session.fallback?.to ?? artifact.file);
      logger.info({ slot, version: want.version, ...agreement }, 'smoke test passed');
    } catch (error) {
      await session.close().catch(() => undefined);
      throw error;
    }
  }
  return { manifest, artifact, dir, session };
}
