/** Device enrollment: a one-time (or N-time) token buys a device identity and its own secret. */

import { randomBytes } from 'node:crypto';
import { type EnrollRequest, type EnrollResponse, isValidDeviceId } from '@edgefleet/protocol';
import { generateSecret, hashSecret } from './auth/secrets.ts';
import type { HubContext } from './context.ts';
import { HubError } from './errors.ts';

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
}

async function uniqueName(ctx: HubContext, wanted: string): Promise<string> {
  if (!(await ctx.store.devices.nameTaken(wanted))) return wanted;
  for (let i = 2; ; i++) {
    const candidate = `${wanted}-${i}`;
    if (!(await ctx.store.devices.nameTaken(candidate))) return candidate;
  }
}

export async function enrollDevice(
  ctx: HubContext,
  request: EnrollRequest,
  requestHost?: string,
): Promise<EnrollResponse> {
  const token = await ctx.store.tokens.consumeEnrollmentToken(hashSecret(request.token));
  if (!token) throw new HubError('UNAUTHORIZED', 'enrollment token is unknown, used up, expired or revoked');
  const base = slug(request.name ?? request.facts.hostname ?? '') || 'device';
  const deviceId = `${base.slice(0, 20)}-${randomBytes(4).toString('hex')}`;
  if (!isValidDeviceId(deviceId)) throw new HubError('BAD_REQUEST', 'could not derive a device id');
  const name = await uniqueName(ctx, request.name ?? request.facts.hostname ?? deviceId);
  const secret = generateSecret('device');
  const profile = request.profile && request.profile !== 'auto' ? request.profile : null;
  await ctx.broker.provisionDevice(deviceId, secret);
  await ctx.store.devices.insert({
    id: deviceId,
    name,
    tags: token.tags,
    profile,
    facts: request.facts,
    secretHash: hashSecret(secret),
  });
  await ctx.store.events.add({
    kind: 'device.enrolled',
    subject: deviceId,
    actor: `enrollment-token:${token.id}`,
    message: `enrolled as "${name}" (${request.facts.arch}, profile ${profile ?? 'unknown'})`,
  });
  ctx.logger.info({ deviceId, name, tokenId: token.id }, 'device enrolled');
  ctx.live.emit({ type: 'device', deviceId });
  return {
    deviceId,
    name,
    secret,
    mqtt: { url: ctx.broker.agentUrl(requestHost), username: deviceId },
    trustedKeys: await ctx.trustedKeys(),
    profile,
  };
}
