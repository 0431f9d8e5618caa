/**
 * ed25519 signatures over the manifest digest, through WebCrypto (Node 20 and current browsers).
 * The signed message is `edgefleet-bundle-v1:` + hex sha256 of the manifest bytes, so a signature
 * can never be replayed as a signature over some other kind of edgefleet message.
 */
import type { TrustedKey } from '@edgefleet/protocol';
import { z } from 'zod';
import { fromBase64, sha256Hex, toBase64 } from './digest.ts';
import { BundleError } from './errors.ts';

const ED25519 = { name: 'Ed25519' } as const;
const DOMAIN = 'edgefleet-bundle-v1:';

/** A signing key as stored on disk by `edgefleet keys create` (keep it secret; 0600). */
export const signingKeyFile = z.object({
  keyId: z.string(),
  publicKey: z.string(),
  privateKey: z.string(),
  createdAt: z.string().optional(),
});
export type SigningKeyFile = z.infer<typeof signingKeyFile>;

export const signatureFile = z.object({
  algorithm: z.literal('ed25519'),
  manifestSha256: z.string().regex(/^[0-9a-f]{64}$/),
  signatures: z
    .array(z.object({ keyId: z.string().max(64), value: z.string().max(200) }))
    .min(1)
    .max(8),
});
export type SignatureFile = z.infer<typeof signatureFile>;

/** The key id: the first 16 hex digits of sha256(raw public key). */
export async function keyIdOf(rawPublicKey: Uint8Array): Promise<string> {
  return (await sha256Hex(rawPublicKey)).slice(0, 16);
}

/** Create a new ed25519 signing key. */
export async function generateSigningKey(): Promise<SigningKeyFile> {
  const pair = (await crypto.subtle.generateKey(ED25519, true, ['sign', 'verify'])) as CryptoKeyPair;
  const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', pair.privateKey));
  return {
    keyId: await keyIdOf(raw),
    publicKey: toBase64(raw),
    privateKey: toBase64(pkcs8),
    createdAt: new Date().toISOString(),
  };
}

/** The public half of a signing key, in the form agents pin. */
export function publicKeyOf(key: SigningKeyFile): TrustedKey {
  return { keyId: key.keyId, publicKey: key.publicKey };
}

/** Sign manifest bytes; returns the `signature` file contents. */
export async function signManifest(manifestBytes: Uint8Array, key: SigningKeyFile): Promise<SignatureFile> {
  const manifestSha256 = await sha256Hex(manifestBytes);
  const privateKey = await crypto.subtle.importKey(
    'pkcs8',
    fromBase64(key.privateKey) as Uint8Array<ArrayBuffer>,
    ED25519,
    false,
    ['sign'],
  );
  const sig = await crypto.subtle.sign(
    ED25519,
    privateKey,
    new TextEncoder().encode(DOMAIN + manifestSha256),
  );
  return {
    algorithm: 'ed25519',
    manifestSha256,
    signatures: [{ keyId: key.keyId, value: toBase64(new Uint8Array(sig)) }],
  };
}

/**
 * Verify that `signature` is a valid signature of `manifestBytes` by one of `trustedKeys`.
 * Returns the id of the key that signed; throws BundleError otherwise.
 */
export async function verifyManifestSignature(
  manifestBytes: Uint8Array,
  signature: SignatureFile | undefined,
  trustedKeys: readonly TrustedKey[],
): Promise<string> {
  if (!signature) throw new BundleError('BUNDLE_UNSIGNED', 'bundle is not signed');
  const manifestSha256 = await sha256Hex(manifestBytes);
  if (signature.manifestSha256 !== manifestSha256) {
    throw new BundleError(
      'BUNDLE_SIGNATURE_INVALID',
      'signature does not cover this manifest (digest differs)',
    );
  }
  const message = new TextEncoder().encode(DOMAIN + manifestSha256);
  let sawTrusted = false;
  for (const entry of signature.signatures) {
    const trusted = trustedKeys.find((k) => k.keyId === entry.keyId);
    if (!trusted) continue;
    sawTrusted = true;
    try {
      const publicKey = await crypto.subtle.importKey(
        'raw',
        fromBase64(trusted.publicKey) as Uint8Array<ArrayBuffer>,
        ED25519,
        false,
        ['verify'],
      );
      if (
        await crypto.subtle.verify(
          ED25519,
          publicKey,
          fromBase64(entry.value) as Uint8Array<ArrayBuffer>,
          message,
        )
      )
        return trusted.keyId;
    } catch (cause) {
      throw new BundleError(
        'BUNDLE_SIGNATURE_INVALID',
        `signature by key ${entry.keyId} could not be checked`,
        { cause },
      );
    }
  }
  if (!sawTrusted) {
    const ids = signature.signatures.map((s) => s.keyId).join(', ');
    throw new BundleError(
      'BUNDLE_UNTRUSTED_KEY',
      `bundle is signed by key(s) ${ids}, none of which is trusted`,
    );
  }
  throw new BundleError(
    'BUNDLE_SIGNATURE_INVALID',
    'bundle signature is invalid (tampered manifest or wrong key)',
  );
}

/**
 * Add a signature by `key` to an existing signature file (the hub countersigns bundles it accepted
 * from a registered publisher, so devices need to pin only the hub's key).
 */
export async function countersign(
  manifestBytes: Uint8Array,
  signature: SignatureFile,
  key: SigningKeyFile,
): Promise<SignatureFile> {
  const own = await signManifest(manifestBytes, key);
  if (own.manifestSha256 !== signature.manifestSha256) {
    throw new BundleError(
      'BUNDLE_SIGNATURE_INVALID',
      'cannot countersign: the signature covers another manifest',
    );
  }
  const others = signature.signatures.filter((s) => s.keyId !== key.keyId);
  return { ...signature, signatures: [...others, ...own.signatures].slice(-8) };
}
