/** API tokens (admin) and device enrollment tokens (operators). Secrets are shown once, at creation. */
import { createApiTokenRequest, createEnrollmentTokenRequest } from '@edgefleet/protocol';
import { principalName } from '../auth/principal.ts';
import { generateSecret, hashSecret, newId } from '../auth/secrets.ts';
import type { HubContext } from '../context.ts';
import { notFound } from '../errors.ts';
import { type ApiRouter, param } from './router.ts';

export function tokenRoutes(router: ApiRouter, ctx: HubContext): void {
  router.define(
    {
      method: 'post',
      path: '/tokens',
      access: 'admin',
      summary: 'Create an API token with a role',
      tag: 'tokens',
      body: createApiTokenRequest,
    },
    async (c, { body, principal }) => {
      const token = generateSecret('api');
      const id = newId('tok');
      await ctx.store.tokens.insertApiToken({
        id,
        name: body.name,
        role: body.role,
        hash: hashSecret(token),
        createdBy: principalName(principal),
      });
      await ctx.store.events.add({
        kind: 'token.created',
        subject: id,
        actor: principalName(principal),
        message: `${body.role} token "${body.name}" created`,
      });
      return c.json({ id, name: body.name, role: body.role, token }, 201);
    },
  );
  router.define(
    {
      method: 'get',
      path: '/tokens',
      access: 'admin',
      summary: 'List API tokens (without secrets)',
      tag: 'tokens',
    },
    async (c) => c.json({ tokens: await ctx.store.tokens.listApiTokens() }),
  );
  router.define(
    { method: 'delete', path: '/tokens/:id', access: 'admin', summary: 'Revoke an API token', tag: 'tokens' },
    async (c, { principal }) => {
      const id = param(c, 'id');
      if (!(await ctx.store.tokens.revokeApiToken(id))) throw notFound(`active token ${id}`);
      await ctx.store.events.add({
        kind: 'token.revoked',
        subject: id,
        actor: principalName(principal),
        message: 'token revoked',
      });
      return c.json({ id, revoked: true });
    },
  );

  router.define(
    {
      method: 'post',
      path: '/enrollment-tokens',
      access: 'write',
      summary: 'Create a device enrollment token',
      tag: 'devices',
      body: createEnrollmentTokenRequest,
    },
    async (c, { body, principal }) => {
      const token = generateSecret('enroll');
      const id = newId('enr');
      const expiresAt = new Date(Date.now() + body.expiresInHours * 3_600_000).toISOString();
      await ctx.store.tokens.insertEnrollmentToken({
        id,
        hash: hashSecret(token),
        uses: body.uses,
        tags: body.tags,
        expiresAt,
        createdBy: principalName(principal),
      });
      return c.json({ id, token, uses: body.uses, tags: body.tags, expiresAt }, 201);
    },
  );
  router.define(
    {
      method: 'get',
      path: '/enrollment-tokens',
      access: 'read',
      summary: 'List enrollment tokens',
      tag: 'devices',
    },
    async (c) => c.json({ tokens: await ctx.store.tokens.listEnrollmentTokens() }),
  );
  router.define(
    {
      method: 'delete',
      path: '/enrollment-tokens/:id',
      access: 'write',
      summary: 'Revoke an enrollment token',
      tag: 'devices',
    },
    async (c) => {
      const id = param(c, 'id');
      if (!(await ctx.store.tokens.revokeEnrollmentToken(id)))
        throw notFound(`active enrollment token ${id}`);
      return c.json({ id, revoked: true });
    },
  );
}
