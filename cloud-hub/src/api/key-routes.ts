/** Publisher keys: bundles signed by a registered key are accepted on upload and trusted by agents. */
import { fromBase64, keyIdOf } from '@edgefleet/bundle';
import { z } from 'zod';
import { principalName } from '../auth/principal.ts';
import type { HubContext } from '../context.ts';
import { HubError, notFound } from '../errors.ts';
import { type ApiRouter, param } from './router.ts';

const registerKey = z
  .object({
    name: z.string().min(1).max(128),
    publicKey: z
      .string()
      .min(40)
      .max(64)
      .describe('raw ed25519 public key, base64 (as in `edgefleet keys create` output)'),
  })
  .strict();

export function keyRoutes(router: ApiRouter, ctx: HubContext): void {
  router.define(
    {
      method: 'post',
      path: '/keys',
      access: 'admin',
      summary: 'Register a publisher signing key',
      tag: 'keys',
      body: registerKey,
    },
    async (c, { body, principal }) => {
      let raw: Uint8Array;
      try {
        raw = fromBase64(body.publicKey);
      } catch {
        raw = new Uint8Array(0);
      }
      if (raw.byteLength !== 32)
        throw new HubError('VALIDATION_FAILED', 'publicKey must be 32 raw bytes in base64', {
          details: { field: 'publicKey' },
        });
      const keyId = await keyIdOf(raw);
      const created = await ctx.store.keys.insert({ keyId, publicKey: body.publicKey, name: body.name });
      if (created) {
        await ctx.store.events.add({
          kind: 'key.registered',
          subject: keyId,
          actor: principalName(principal),
          message: `publisher key "${body.name}" registered`,
        });
      }
      return c.json({ keyId, name: body.name, created }, created ? 201 : 200);
    },
  );
  router.define(
    {
      method: 'get',
      path: '/keys',
      access: 'read',
      summary: 'Trusted keys (the hub key and publisher keys)',
      tag: 'keys',
    },
    async (c) =>
      c.json({
        hubKey: { keyId: ctx.signingKey.keyId, publicKey: ctx.signingKey.publicKey },
        keys: await ctx.store.keys.list(),
      }),
  );
  router.define(
    {
      method: 'delete',
      path: '/keys/:keyId',
      access: 'admin',
      summary: 'Revoke a publisher key',
      tag: 'keys',
    },
    async (c, { principal }) => {
      const keyId = param(c, 'keyId');
      if (!(await ctx.store.keys.revoke(keyId))) throw notFound(`active key ${keyId}`);
      await ctx.store.events.add({
        kind: 'key.revoked',
        subject: keyId,
        actor: principalName(principal),
        message: 'publisher key revoked',
      });
      return c.json({ keyId, revoked: true });
    },
  );
}
