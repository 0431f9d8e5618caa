import { type Command, optionalInt, optionalString, UsageError } from '../command.ts';
import { hubClient, hubOptions } from '../hub-client.ts';
import { formatTable } from '../table.ts';

interface EnrollmentToken {
  id: string;
  token?: string;
  uses?: number;
  usesLeft?: number;
  tags: string[];
  expiresAt: string;
  revokedAt?: string | null;
}

export const tokenCommand: Command = {
  name: 'token',
  summary: 'Device enrollment tokens (create, list, revoke) and API tokens (api --role R --name N)',
  usage:
    'token create [--uses N] [--tags a,b] [--expires-hours H] | token list | token revoke ID | token api --role admin|operator|viewer --name N',
  options: {
    ...hubOptions(),
    uses: { type: 'string' },
    tags: { type: 'string' },
    'expires-hours': { type: 'string' },
    role: { type: 'string' },
    name: { type: 'string' },
  },
  async run(ctx) {
    const [action = 'create', id] = ctx.positionals;
    const client = hubClient(ctx);
    if (action === 'create') {
      const tags =
        optionalString(ctx, 'tags')
          ?.split(',')
          .map((t) => t.trim())
          .filter(Boolean) ?? [];
      const hours = optionalString(ctx, 'expires-hours');
      const created = await client.request<EnrollmentToken>('POST', '/enrollment-tokens', {
        uses: optionalInt(ctx, 'uses') ?? 1,
        tags,
        ...(hours ? { expiresInHours: Number(hours) } : {}),
      });
      ctx.printJson(created);
      ctx.print(created.token);
      process.stderr.write(
        ctx.json
          ? ''
          : `enrollment token for ${created.uses} device(s)${tags.length ? ` tagged ${tags.join(', ')}` : ''}, valid until ${created.expiresAt}\n`,
      );
      return 0;
    }
    if (action === 'list') {
      const { tokens } = await client.request<{ tokens: EnrollmentToken[] }>('GET', '/enrollment-tokens');
      ctx.printJson(tokens);
      ctx.print(
        formatTable(tokens, [
          { header: 'ID', value: (t) => t.id },
          { header: 'USES LEFT', value: (t) => t.usesLeft, align: 'right' },
          { header: 'TAGS', value: (t) => t.tags.join(',') },
          { header: 'EXPIRES', value: (t) => t.expiresAt },
          {
            header: 'STATE',
            value: (t) =>
              t.revokedAt ? 'revoked' : Date.parse(t.expiresAt) < Date.now() ? 'expired' : 'valid',
          },
        ]),
      );
      return 0;
    }
    if (action === 'revoke') {
      if (!id) throw new UsageError('token revoke needs the token id (see `edgefleet token list`)');
      ctx.printJson(await client.request('DELETE', `/enrollment-tokens/${encodeURIComponent(id)}`));
      ctx.print(`revoked ${id}`);
      return 0;
    }
    if (action === 'api') {
      const role = optionalString(ctx, 'role');
      const name = optionalString(ctx, 'name');
      if (!role || !name) throw new UsageError('token api needs --role admin|operator|viewer and --name');
      const created = await client.request<{ id: string; token: string; role: string }>('POST', '/tokens', {
        role,
        name,
      });
      ctx.printJson(created);
      ctx.print(created.token);
      return 0;
    }
    throw new UsageError(`unknown action "${action}"`);
  },
};
