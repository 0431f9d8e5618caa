/** Bearer secrets: random, prefixed by kind (so leaked ones are recognisable), stored only as sha256. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export type SecretKind = 'api' | 'enroll' | 'device' | 'hub';
const prefixes: Record<SecretKind, string> = { api: 'efa', enroll: 'efe', device: 'efd', hub: 'efh' };

export function generateSecret(kind: SecretKind): string {
  return `${prefixes[kind]}_${randomBytes(32).toString('base64url')}`;
}

export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Constant-time comparison of two hex digests. */
export function digestsEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  return x.length === y.length && x.length > 0 && timingSafeEqual(x, y);
}

/** A short random id for records (not a secret). */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}

/** Mask a secret for logs: keep the kind prefix only. */
export function redact(secret: string): string {
  return `${secret.slice(0, 4)}…`;
}
