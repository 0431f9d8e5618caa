/** Writing and reading `.efb` bundles: a tar of manifest.json, signature and the files it names. */
import type { TrustedKey } from '@edgefleet/protocol';
import { formatPath } from '@edgefleet/protocol';
import { createTar, parseTar } from 'nanotar';
import { sha256Hex } from './digest.ts';
import { BundleError } from './errors.ts';
import {
  type BundleManifest,
  type BundleManifestInput,
  bundleManifest,
  bundlePath,
  type FileRef,
} from './manifest.ts';
import {
  type SignatureFile,
  type SigningKeyFile,
  signatureFile,
  signManifest,
  verifyManifestSignature,
} from './signing.ts';

export const MANIFEST_FILE = 'manifest.json';
export const SIGNATURE_FILE = 'signature';
/** Default ceiling for a bundle read into memory; larger edge models are rare and need an explicit limit. */
export const DEFAULT_MAX_BUNDLE_BYTES = 2 * 1024 ** 3 - 1;
const MAX_ENTRIES = 256;

export interface PackedBundle {
  bytes: Uint8Array;
  manifest: BundleManifest;
  manifestBytes: Uint8Array;
  signature: SignatureFile;
}

export interface UnpackedBundle {
  manifest: BundleManifest;
  /** The exact bytes the signature covers. */
  manifestBytes: Uint8Array;
  signature: SignatureFile | undefined;
  /** The key that signed, when trusted keys were given. */
  signedBy: string | undefined;
  files: Map<string, Uint8Array>;
}

/** A file reference (path, sha256, size) for a manifest, computed from its bytes. */
export async function describeFile(file: string, bytes: Uint8Array): Promise<FileRef> {
  return { file, sha256: await sha256Hex(bytes), size_bytes: bytes.byteLength };
}

/** Validate a manifest, check it against the files, sign it and write the tar. */
export async function packBundle(
  manifestInput: BundleManifestInput,
  files: ReadonlyMap<string, Uint8Array>,
  key: SigningKeyFile,
): Promise<PackedBundle> {
  const manifest = parseManifestValue(manifestInput);
  await checkFilesAgainstManifest(manifest, files);
  const manifestBytes = new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`);
  const signature = await signManifest(manifestBytes, key);
  // A fixed mtime keeps the same inputs producing the same bytes.
  const attrs = { mtime: Date.parse(manifest.createdAt), mode: '644', uid: 0, gid: 0 };
  const entries = [
    { name: MANIFEST_FILE, data: manifestBytes, attrs },
    {
      name: SIGNATURE_FILE,
      data: new TextEncoder().encode(`${JSON.stringify(signature, null, 2)}\n`),
      attrs,
    },
    ...[...files.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, data]) => ({ name, data, attrs })),
  ];
  return { bytes: createTar(entries), manifest, manifestBytes, signature };
}

export interface UnpackOptions {
  /** Keys to verify the signature against; omit only where the caller verifies separately. */
  trustedKeys?: readonly TrustedKey[];
  maxBytes?: number;
  /** For the expiry check. */
  now?: Date;
}

/** Read and verify a bundle held in memory. Never trusts a path or size from the tar itself. */
export async function unpackBundle(bytes: Uint8Array, options: UnpackOptions = {}): Promise<UnpackedBundle> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
  if (bytes.byteLength > maxBytes) {
    throw new BundleError(
      'BUNDLE_TOO_LARGE',
      `bundle is ${bytes.byteLength} bytes, over the limit of ${maxBytes}`,
    );
  }
  if (bytes.byteLength < 512 || bytes.byteLength % 512 !== 0) {
    throw new BundleError(
      'BUNDLE_MALFORMED',
      'not a bundle: a tar archive is a whole number of 512-byte blocks',
    );
  }
  if (!hasUstarHeader(bytes))
    throw new BundleError('BUNDLE_MALFORMED', 'not a bundle: no tar header at the start');
  const files = readTarEntries(bytes);
  const manifestBytes = files.get(MANIFEST_FILE);
  if (!manifestBytes) throw new BundleError('BUNDLE_MALFORMED', `bundle has no ${MANIFEST_FILE}`);
  files.delete(MANIFEST_FILE);
  const manifest = parseManifestBytes(manifestBytes);
  const signatureBytes = files.get(SIGNATURE_FILE);
  files.delete(SIGNATURE_FILE);
  const signature = signatureBytes ? parseSignature(signatureBytes) : undefined;
  const signedBy = options.trustedKeys
    ? await verifyManifestSignature(manifestBytes, signature, options.trustedKeys)
    : undefined;
  await checkFilesAgainstManifest(manifest, files);
  checkNotExpired(manifest, options.now ?? new Date());
  return { manifest, manifestBytes, signature, signedBy, files };
}

/** The first block carries the "ustar" magic and a valid header checksum. */
function hasUstarHeader(bytes: Uint8Array): boolean {
  const magic = new TextDecoder().decode(bytes.subarray(257, 262));
  if (magic !== 'ustar') return false;
  const stored = Number.parseInt(
    new TextDecoder().decode(bytes.subarray(148, 156)).replace(/\0/g, '').trim(),
    8,
  );
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (bytes[i] ?? 0);
  return stored === sum;
}

function readTarEntries(bytes: Uint8Array): Map<string, Uint8Array> {
  let entries: { name: string; type: string | undefined; size: number; data?: Uint8Array }[];
  try {
    entries = parseTar(bytes);
  } catch (cause) {
    throw new BundleError('BUNDLE_MALFORMED', 'bundle is not a readable tar archive', { cause });
  }
  if (entries.length === 0) throw new BundleError('BUNDLE_MALFORMED', 'bundle is empty');
  if (entries.length > MAX_ENTRIES)
    throw new BundleError('BUNDLE_MALFORMED', `bundle has over ${MAX_ENTRIES} entries`);
  const files = new Map<string, Uint8Array>();
  for (const entry of entries) {
    if (entry.type !== 'file' && entry.type !== undefined) {
      throw new BundleError(
        'BUNDLE_UNSAFE_PATH',
        `bundle entry "${entry.name}" is a ${entry.type}, only plain files are allowed`,
      );
    }
    const isControlFile = entry.name === MANIFEST_FILE || entry.name === SIGNATURE_FILE;
    if (!isControlFile && !bundlePath.safeParse(entry.name).success) {
      throw new BundleError(
        'BUNDLE_UNSAFE_PATH',
        `bundle entry has an unsafe name: ${JSON.stringify(entry.name.slice(0, 120))}`,
      );
    }
    if (files.has(entry.name))
      throw new BundleError('BUNDLE_MALFORMED', `bundle entry "${entry.name}" appears twice`);
    const data = entry.data ?? new Uint8Array(0);
    if (data.byteLength !== entry.size)
      throw new BundleError('BUNDLE_MALFORMED', `bundle entry "${entry.name}" is truncated`);
    files.set(entry.name, data);
  }
  return files;
}

/** Parse and validate manifest bytes (exposed for agents that fetch the manifest alone). */
export function parseManifestBytes(bytes: Uint8Array): BundleManifest {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (cause) {
    throw new BundleError('BUNDLE_MALFORMED', `${MANIFEST_FILE} is not valid JSON`, { cause });
  }
  return parseManifestValue(value);
}

function parseManifestValue(value: unknown): BundleManifest {
  const result = bundleManifest.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue ? formatPath(issue.path) || '(root)' : '(root)';
    throw new BundleError('BUNDLE_MALFORMED', `invalid manifest: ${where}: ${issue?.message ?? 'invalid'}`, {
      details: { field: where },
    });
  }
  return result.data;
}

/** Parse a `signature` file. */
export function parseSignature(bytes: Uint8Array): SignatureFile {
  try {
    return signatureFile.parse(JSON.parse(new TextDecoder().decode(bytes)));
  } catch (cause) {
    throw new BundleError('BUNDLE_SIGNATURE_INVALID', 'signature file is malformed', { cause });
  }
}

/** Every file the manifest names is present with its sha256 and size, and nothing else is. */
async function checkFilesAgainstManifest(
  manifest: BundleManifest,
  files: ReadonlyMap<string, Uint8Array>,
): Promise<void> {
  const refs = referencedFiles(manifest);
  for (const ref of refs) {
    const data = files.get(ref.file);
    if (!data)
      throw new BundleError(
        'BUNDLE_MALFORMED',
        `manifest names ${ref.file}, which the bundle does not contain`,
      );
    if (data.byteLength !== ref.size_bytes || (await sha256Hex(data)) !== ref.sha256) {
      throw new BundleError(
        'BUNDLE_HASH_MISMATCH',
        `${ref.file} does not match its sha256/size in the manifest`,
        {
          details: { file: ref.file },
        },
      );
    }
  }
  const named = new Set(refs.map((r) => r.file));
  for (const name of files.keys()) {
    if (!named.has(name))
      throw new BundleError('BUNDLE_MALFORMED', `bundle contains ${name}, which the manifest does not name`);
  }
}

/** All files a manifest references: artifacts, smoke test, reference profile. */
export function referencedFiles(manifest: BundleManifest): FileRef[] {
  const refs: FileRef[] = manifest.artifacts.map((a) => ({
    file: a.file,
    sha256: a.sha256,
    size_bytes: a.size_bytes,
  }));
  if (manifest.smokeTest) refs.push(manifest.smokeTest);
  if (manifest.referenceProfile) refs.push(manifest.referenceProfile);
  return [...new Map(refs.map((r) => [r.file, r])).values()];
}

export function checkNotExpired(manifest: BundleManifest, now: Date): void {
  if (manifest.expiresAt && Date.parse(manifest.expiresAt) <= now.getTime()) {
    throw new BundleError(
      'BUNDLE_EXPIRED',
      `bundle ${manifest.name}@${manifest.version} expired at ${manifest.expiresAt}`,
    );
  }
}
