/**
 * Publishing a model version from an upload: a signed `.efb` as is (signature checked against the
 * hub's and registered publisher keys), or a raw `.onnx` / `.tflite` that the hub packages and
 * signs itself. Everything is validated before anything is written; a refused upload leaves nothing.
 */
import {
  BundleError,
  countersign,
  type PackedBundle,
  referencedFiles,
  type SignatureFile,
  sha256Hex,
  unpackBundle,
} from '@edgefleet/bundle';
import * as converters from '@edgefleet/converters';
import type { HubContext } from './context.ts';
import { HubError } from './errors.ts';
import type { ModelVersionRecord, VersionFile } from './store/models.ts';

// biome-ignore lint/suspicious/noExplicitAny: bridging to converters while its exports land
type AnyFn = (...args: any[]) => any;
/** A converters export; a clear error if this build lacks it. */
function converterFn(name: string): AnyFn {
  const fn = (converters as Record<string, unknown>)[name];
  if (typeof fn !== 'function')
    throw new HubError('UNSUPPORTED', `this hub cannot package that format yet (${name} missing)`);
  return fn as AnyFn;
}

export type UploadFormat = 'efb' | 'onnx' | 'tflite';

/** Recognise an upload by its first bytes: tar (ustar magic), TFLite (`TFL3`), else ONNX. */
export function detectFormat(bytes: Uint8Array): UploadFormat {
  if (bytes.byteLength >= 262 && new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') return 'efb';
  if (bytes.byteLength >= 8 && new TextDecoder().decode(bytes.subarray(4, 8)) === 'TFL3') return 'tflite';
  return 'onnx';
}

interface Upload {
  model: string;
  version: string;
  bytes: Uint8Array;
  /** The compiled `_edgetpu.tflite` twin of a `.tflite` upload. */
  edgetpu?: Uint8Array;
  actor: string | null;
}

interface Prepared {
  manifestBytes: Uint8Array;
  signatureText: string;
  signedBy: string;
  files: Map<string, Uint8Array>;
  sourceFormat: UploadFormat;
}

async function prepare(ctx: HubContext, upload: Upload): Promise<Prepared> {
  const format = detectFormat(upload.bytes);
  if (upload.edgetpu && format !== 'tflite') {
    throw new HubError('VALIDATION_FAILED', 'an edgetpu twin can only accompany a .tflite model', {
      details: { field: 'edgetpu' },
    });
  }
  if (format === 'efb') {
    const bundle = await unpackBundle(upload.bytes, {
      trustedKeys: await ctx.trustedKeys(),
      maxBytes: ctx.settings.maxUploadBytes,
    });
    for (const field of ['name', 'version'] as const) {
      const expected = field === 'name' ? upload.model : upload.version;
      if (bundle.manifest[field] !== expected) {
        throw new HubError(
          'VALIDATION_FAILED',
          `bundle ${field} is "${bundle.manifest[field]}" but the URL says "${expected}"`,
          { details: { field } },
        );
      }
    }
    // Countersigned by the hub: devices pin the hub's key at enrollment, and so trust publisher
    // keys registered later through the hub's own signature.
    const signature = await countersign(
      bundle.manifestBytes,
      bundle.signature as SignatureFile,
      ctx.signingKey,
    );
    return {
      manifestBytes: bundle.manifestBytes,
      signatureText: JSON.stringify(signature),
      signedBy: bundle.signedBy ?? '',
      files: bundle.files,
      sourceFormat: 'efb',
    };
  }
  let packed: PackedBundle;
  if (format === 'tflite') {
    packed = await converterFn('packageTflite')({
      cpu: upload.bytes,
      edgetpu: upload.edgetpu,
      name: upload.model,
      version: upload.version,
      key: ctx.signingKey,
    });
  } else {
    converters.inspectOnnx(upload.bytes); // a typed ONNX_INVALID error before any work
    packed = await converters.packageOnnx({
      source: upload.bytes,
      name: upload.model,
      version: upload.version,
      key: ctx.signingKey,
    });
  }
  // Re-read our own bundle through the same checks every upload gets.
  const bundle = await unpackBundle(packed.bytes, {
    trustedKeys: [{ keyId: ctx.signingKey.keyId, publicKey: ctx.signingKey.publicKey }],
  });
  return {
    manifestBytes: bundle.manifestBytes,
    signatureText: JSON.stringify(bundle.signature),
    signedBy: ctx.signingKey.keyId,
    files: bundle.files,
    sourceFormat: format,
  };
}

export async function publishVersion(ctx: HubContext, upload: Upload): Promise<ModelVersionRecord> {
  if (await ctx.store.models.getVersion(upload.model, upload.version)) {
    throw new HubError(
      'CONFLICT',
      `${upload.model}@${upload.version} already exists; publish a new version instead`,
    );
  }
  let prepared: Prepared;
  try {
    prepared = await prepare(ctx, upload);
  } catch (error) {
    if (error instanceof BundleError || error instanceof HubError) throw error;
    if (error instanceof Error && 'code' in error) throw error; // typed converter errors map to 400
    throw new HubError('BAD_REQUEST', `could not read the upload: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const manifest = JSON.parse(new TextDecoder().decode(prepared.manifestBytes));
  const kinds = new Map<string, VersionFile['kind']>();
  for (const a of manifest.artifacts as { file: string }[]) kinds.set(a.file, 'artifact');
  if (manifest.smokeTest) kinds.set(manifest.smokeTest.file, 'smoke-test');
  if (manifest.referenceProfile) kinds.set(manifest.referenceProfile.file, 'reference-profile');

  const created: string[] = [];
  const files: VersionFile[] = [];
  try {
    for (const ref of referencedFiles(manifest)) {
      const bytes = prepared.files.get(ref.file);
      if (!bytes) throw new HubError('BAD_REQUEST', `bundle is missing ${ref.file}`);
      const stored = await ctx.artifacts.put(bytes, ref.sha256);
      if (stored.created) created.push(stored.sha256);
      files.push({
        file: ref.file,
        sha256: ref.sha256,
        sizeBytes: ref.size_bytes,
        kind: kinds.get(ref.file) ?? 'artifact',
      });
    }
    const record = {
      model: upload.model,
      version: upload.version,
      createdBy: upload.actor,
      manifestText: new TextDecoder().decode(prepared.manifestBytes),
      manifestSha256: await sha256Hex(prepared.manifestBytes),
      signatureText: prepared.signatureText,
      signedBy: prepared.signedBy,
      sourceFormat: prepared.sourceFormat,
      files,
    };
    if (!(await ctx.store.models.insertVersion(record))) {
      throw new HubError(
        'CONFLICT',
        `${upload.model}@${upload.version} already exists; publish a new version instead`,
      );
    }
  } catch (error) {
    // Nothing half-written: drop blobs this upload created that no version references.
    for (const sha of created)
      if (!(await ctx.store.models.isFileReferenced(sha))) await ctx.artifacts.delete(sha);
    throw error;
  }
  await ctx.store.events.add({
    kind: 'model.published',
    subject: `${upload.model}@${upload.version}`,
    actor: upload.actor,
    message: `published from ${prepared.sourceFormat} (${files.length} files, signed by ${prepared.signedBy})`,
  });
  ctx.live.emit({ type: 'model', model: upload.model, version: upload.version });
  const stored = await ctx.store.models.getVersion(upload.model, upload.version);
  if (!stored) throw new HubError('INTERNAL', 'version vanished after insert');
  return stored;
}
