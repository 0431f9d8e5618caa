/** Device enrollment: a one-time (or N-time) token buys a device identity and its own secret. */

import { randomBytes } from 'node:crypto';
import {
  type BrowserEnrollRequest,
  type BrowserEnrollResponse,
  type DeviceFacts,
  type EnrollRequest,
  type EnrollResponse,
  isValidDeviceId,
} from '@edgefleet/protocol';
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

interface NewEnrollment {
  token: string;
  /** The name asked for; else `fallbackName`, else the device id. */
  name: string | undefined;
  fallbackName: string | undefined;
  /** Stem of the device id when no name is given. */
  idStem: string;
  profile: string | null;
  facts: DeviceFacts;
}

/**
 * Consume one use of the enrollment token and create the device with its own secret. Agents and
 * browsers both come through here, so the same token rules, naming and broker provisioning apply
 * (a browser gets MQTT credentials too: revocation then works the same for every device).
 */
async function createEnrolledDevice(ctx: HubContext, request: NewEnrollment) {
  const hash = hashSecret(request.token);
  const token = await ctx.store.tokens.consumeEnrollmentToken(hash);
  if (!token) {
    // A valid API token is a mix-up, not a guess (the SDK's `load({token})` with no
    // `report.enrollToken`): 403, which the failed-attempt limit does not count, so page loads
    // behind one address cannot lock agents there out of enrollment.
    if (await ctx.store.tokens.findActiveApiToken(hash))
      throw new HubError(
        'FORBIDDEN',
        'an API token cannot enroll a device; use an enrollment token (efe_…, POST /api/v1/enrollment-tokens)',
      );
    throw new HubError('UNAUTHORIZED', 'enrollment token is unknown, used up, expired or revoked');
  }
  const base = slug(request.name ?? request.fallbackName ?? '') || request.idStem;
  const deviceId = `${base.slice(0, 20)}-${randomBytes(4).toString('hex')}`;
  if (!isValidDeviceId(deviceId)) throw new HubError('BAD_REQUEST', 'could not derive a device id');
  const name = await uniqueName(ctx, request.name ?? request.fallbackName ?? deviceId);
  const secret = generateSecret('device');
  await ctx.broker.provisionDevice(deviceId, secret);
  await ctx.store.devices.insert({
    id: deviceId,
    name,
    tags: token.tags,
    profile: request.profile,
    facts: request.facts,
    secretHash: hashSecret(secret),
  });
  await ctx.store.events.add({
    kind: 'device.enrolled',
    subject: deviceId,
    actor: `enrollment-token:${token.id}`,
    message: `enrolled as "${name}" (${request.facts.platform} ${request.facts.arch}, profile ${request.profile ?? 'unknown'})`,
  });
  ctx.logger.info({ deviceId, name, tokenId: token.id }, 'device enrolled');
  ctx.live.emit({ type: 'device', deviceId });
  return { deviceId, name, secret, trustedKeys: await ctx.trustedKeys() };
}

export async function enrollDevice(
  ctx: HubContext,
  request: EnrollRequest,
  requestHost?: string,
): Promise<EnrollResponse> {
  const profile = request.profile && request.profile !== 'auto' ? request.profile : null;
  const device = await createEnrolledDevice(ctx, {
    token: request.token,
    name: request.name,
    fallbackName: request.facts.hostname,
    idStem: 'device',
    profile,
    facts: request.facts,
  });
  return {
    deviceId: device.deviceId,
    name: device.name,
    secret: device.secret,
    mqtt: { url: ctx.broker.agentUrl(requestHost), username: device.deviceId },
    trustedKeys: device.trustedKeys,
    profile,
  };
}

/** A browser joins with its SDK-detected facts and profile; it reports over HTTP, not MQTT. */
export async function enrollBrowser(
  ctx: HubContext,
  request: BrowserEnrollRequest,
): Promise<BrowserEnrollResponse> {
  const device = await createEnrolledDevice(ctx, {
    token: request.token,
    name: request.name,
    fallbackName: undefined,
    idStem: 'browser',
    profile: request.profile,
    facts: request.facts,
  });
  return { ...device, profile: request.profile };
}
