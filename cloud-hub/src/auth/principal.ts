/** Who is calling: an API token with a role, or an enrolled device. Resolved from the bearer secret. */
import { type Permission, type Role, rolePermissions } from '@edgefleet/protocol';
import type { Store } from '../store/store.ts';
import { hashSecret } from './secrets.ts';

export type Principal =
  | { kind: 'token'; role: Exclude<Role, 'device'>; tokenId: string; name: string }
  | { kind: 'device'; role: 'device'; deviceId: string };

export function principalName(p: Principal | undefined): string | null {
  if (!p) return null;
  return p.kind === 'device' ? `device:${p.deviceId}` : `token:${p.name}`;
}

export function can(p: Principal | undefined, permission: Permission): boolean {
  return p !== undefined && rolePermissions[p.role].includes(permission);
}

/** Look the secret up as an API token, then as a device secret. Revoked ones resolve to nothing. */
export async function resolvePrincipal(store: Store, secret: string): Promise<Principal | undefined> {
  const hash = hashSecret(secret);
  if (secret.startsWith('efd_')) {
    const device = await store.devices.findBySecretHash(hash);
    return device ? { kind: 'device', role: 'device', deviceId: device.id } : undefined;
  }
  const token = await store.tokens.findActiveApiToken(hash);
  if (!token) return undefined;
  return { kind: 'token', role: token.role as Exclude<Role, 'device'>, tokenId: token.id, name: token.name };
}
