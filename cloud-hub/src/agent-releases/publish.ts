/**
 * Publishing an agent release: the archive `edgefleet flash --key` built, with its signed release
 * manifest. Everything is checked before anything is written (signature by a key the hub trusts,
 * manifest schema, URL against manifest, bytes against manifest), so a refused upload leaves nothing.
 */
import {
  BundleError,
  countersign,
  type SignatureFile,
  sha256Hex,
  signatureFile,
  verifyManifestSignature,
} from '@edgefleet/bundle';
import { type AgentReleaseManifest, agentReleaseManifest, formatPath } from '@edgefleet/protocol';
import type { HubContext } from '../context.ts';
import { HubError } from '../errors.ts';
import type { AgentReleaseRecord } from '../store/agent-releases.ts';

export const MANIFEST_HEADER = 'X-Edgefleet-Release-Manifest';
export const SIGNATURE_HEADER = 'X-Edgefleet-Release-Signature';

export interface AgentReleaseUpload {
  version: string;
  arch: string;
  bytes: Uint8Array;
  /** The two headers as sent (base64), undefined when absent. */
  manifestHeader: string | undefined;
  signatureHeader: string | undefined;
  actor: string | null;
}

function invalid(field: string, message: string): HubError {
  return new HubError('VALIDATION_FAILED', message, { details: { field } });
}

/** Strict base64: Buffer.from(…, 'base64') silently skips junk, which would hide a mangled header. */
function decodeBase64Header(name: string, value: string | undefined): Uint8Array {
  if (value === undefined || value.trim() === '')
    throw invalid(name, `missing header ${name} (base64 of the ${describe(name)})`);
  const text = value.trim();
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text))
    throw invalid(name, `header ${name} is not valid base64`);
  return new Uint8Array(Buffer.from(text, 'base64'));
}

function describe(header: string): string {
  return header === MANIFEST_HEADER ? 'release manifest JSON' : 'release manifest signature JSON';
}

function parseJsonHeader(name: string, bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw invalid(name, `header ${name} does not decode to JSON (expected the ${describe(name)})`);
  }
}

function parseSignatureHeader(value: string | undefined): SignatureFile {
  const json = parseJsonHeader(SIGNATURE_HEADER, decodeBase64Header(SIGNATURE_HEADER, value));
  const parsed = signatureFile.safeParse(json);
  if (!parsed.success)
    throw invalid(
      SIGNATURE_HEADER,
      `header ${SIGNATURE_HEADER} is not a signature file: ${firstIssue(parsed.error)}`,
    );
  return parsed.data;
}

function parseManifest(bytes: Uint8Array): AgentReleaseManifest {
  const parsed = agentReleaseManifest.safeParse(parseJsonHeader(MANIFEST_HEADER, bytes));
  if (!parsed.success)
    throw invalid(MANIFEST_HEADER, `the release manifest is invalid: ${firstIssue(parsed.error)}`);
  return parsed.data;
}

function firstIssue(error: { issues: { path: PropertyKey[]; message: string }[] }): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  return issue.path.length > 0 ? `${formatPath(issue.path)}: ${issue.message}` : issue.message;
}

/** The URL names the release the manifest describes, or the upload is refused. */
function checkPathParams(version: string, arch: string): void {
  const v = agentReleaseManifest.shape.version.safeParse(version);
  if (!v.success) throw invalid('version', `invalid version "${version}": ${firstIssue(v.error)}`);
  const a = agentReleaseManifest.shape.arch.safeParse(arch);
  if (!a.success) throw invalid('arch', `invalid arch "${arch}": expected arm64 or x64`);
}

interface Verified {
  manifest: AgentReleaseManifest;
  manifestText: string;
  /** Countersigned by the hub, as published bundles are: devices pin the hub's key at enrollment. */
  signature: SignatureFile;
}

async function verify(ctx: HubContext, upload: AgentReleaseUpload): Promise<Verified> {
  checkPathParams(upload.version, upload.arch);
  const manifestBytes = decodeBase64Header(MANIFEST_HEADER, upload.manifestHeader);
  const signature = parseSignatureHeader(upload.signatureHeader);
  try {
    await verifyManifestSignature(manifestBytes, signature, await ctx.trustedKeys());
  } catch (error) {
    if (!(error instanceof BundleError)) throw error;
    // Keep the bundle code (BUNDLE_UNTRUSTED_KEY, BUNDLE_SIGNATURE_INVALID: 400) so clients can tell them apart.
    throw new HubError(error.code, `release manifest signature: ${error.message}`, {
      cause: error,
      details: { field: SIGNATURE_HEADER },
    });
  }
  const manifest = parseManifest(manifestBytes);
  for (const [field, fromUrl] of [
    ['version', upload.version],
    ['arch', upload.arch],
  ] as const) {
    if (manifest[field] !== fromUrl)
      throw invalid(
        field,
        `the release manifest's ${field} is "${manifest[field]}" but the URL says "${fromUrl}"`,
      );
  }
  if (upload.bytes.byteLength === 0) throw invalid('body', 'upload is empty: the body must be the archive');
  if (upload.bytes.byteLength !== manifest.size_bytes)
    throw invalid(
      'body',
      `the archive is ${upload.bytes.byteLength} bytes but the release manifest says ${manifest.size_bytes}`,
    );
  const sha256 = await sha256Hex(upload.bytes);
  if (sha256 !== manifest.sha256)
    throw invalid(
      'body',
      `the archive's sha256 is ${sha256} but the release manifest says ${manifest.sha256}`,
    );
  return {
    manifest,
    manifestText: new TextDecoder().decode(manifestBytes),
    signature: await countersign(manifestBytes, signature, ctx.signingKey),
  };
}

/** The same release again (same bytes) is a no-op; other bytes under a published version are refused. */
function sameOrConflict(existing: AgentReleaseRecord, sha256: string): AgentReleaseRecord {
  if (existing.sha256 === sha256) return existing;
  throw new HubError(
    'CONFLICT',
    `agent ${existing.version} for ${existing.arch} is already published with other bytes (sha256 ${existing.sha256}); publish a new version instead`,
  );
}

export async function publishAgentRelease(
  ctx: HubContext,
  upload: AgentReleaseUpload,
): Promise<{ release: AgentReleaseRecord; created: boolean }> {
  const { manifest, manifestText, signature } = await verify(ctx, upload);
  const existing = await ctx.store.agentReleases.get(manifest.version, manifest.arch);
  if (existing) return { release: sameOrConflict(existing, manifest.sha256), created: false };
  await ctx.artifacts.put(upload.bytes, manifest.sha256);
  const inserted = await ctx.store.agentReleases.put({
    version: manifest.version,
    arch: manifest.arch,
    sha256: manifest.sha256,
    sizeBytes: manifest.size_bytes,
    manifestText,
    signatureText: JSON.stringify(signature),
    createdBy: upload.actor,
  });
  const stored = await ctx.store.agentReleases.get(manifest.version, manifest.arch);
  if (!stored) throw new HubError('INTERNAL', 'agent release vanished after insert');
  // Another replica published the same version and arch between our read and insert.
  if (!inserted) return { release: sameOrConflict(stored, manifest.sha256), created: false };
  await ctx.store.events.add({
    kind: 'agent-release.published',
    subject: `agent@${manifest.version}`,
    actor: upload.actor,
    message: `agent ${manifest.version} for ${manifest.arch} published (${manifest.size_bytes} bytes)`,
    data: { arch: manifest.arch, sha256: manifest.sha256 },
  });
  return { release: stored, created: true };
}
