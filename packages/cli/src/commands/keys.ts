/**
 * `edgefleet keys`: the ed25519 key that signs bundles made by `convert`. The private key stays in
 * a 0600 file (default ~/.edgefleet/signing-key.json, or EDGEFLEET_SIGNING_KEY); the hub learns
 * only the public half (`keys register`), and accepts and countersigns bundles signed with it.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { type Command, optionalString, UsageError } from '../command.ts';
import { hubClient, hubOptions } from '../hub-client.ts';

type SigningKeyFile = import('@edgefleet/bundle').SigningKeyFile;

/** Where the signing key lives when no --key/--out is given. */
export function defaultKeyPath(): string {
  return process.env.EDGEFLEET_SIGNING_KEY || join(homedir(), '.edgefleet', 'signing-key.json');
}

/** Read and validate a signing key file; a clear one-line error when it is missing or not a key. */
export async function loadSigningKey(path = defaultKeyPath()): Promise<SigningKeyFile> {
  const { signingKeyFile } = await import('@edgefleet/bundle');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new UsageError(
      `no signing key at ${path}: create one with \`edgefleet keys create\` (or pass --key FILE)`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const key = signingKeyFile.safeParse(parsed);
  if (!key.success) throw new UsageError(`${path} is not an edgefleet signing key file`);
  return key.data;
}

async function createKey(path: string, force: boolean): Promise<SigningKeyFile> {
  const { generateSigningKey } = await import('@edgefleet/bundle');
  const key = await generateSigningKey();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    // 'wx' refuses to replace an existing key: losing it orphans every bundle signed with it.
    await writeFile(path, `${JSON.stringify(key, null, 2)}\n`, { mode: 0o600, flag: force ? 'w' : 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST')
      throw new UsageError(
        `${path} already exists; pass --force to replace it (bundles signed with it stay valid only where its public key stays trusted)`,
      );
    throw error;
  }
  await chmod(path, 0o600); // writeFile's mode does not apply to an existing file
  return key;
}

export const keysCommand: Command = {
  name: 'keys',
  summary: 'Bundle signing keys: create one, show its public half, register it with the hub',
  usage: 'keys create [--out FILE] [--force] | keys show [--key FILE] | keys register --name N [--key FILE]',
  options: {
    ...hubOptions(),
    out: { type: 'string', short: 'o' },
    key: { type: 'string' },
    force: { type: 'boolean', default: false },
    name: { type: 'string' },
  },
  async run(ctx) {
    const [action = 'create'] = ctx.positionals;
    if (action === 'create') {
      const path = optionalString(ctx, 'out') ?? defaultKeyPath();
      const key = await createKey(path, ctx.values.force === true);
      const result = { keyId: key.keyId, publicKey: key.publicKey, path };
      ctx.printJson(result);
      ctx.print(`signing key ${key.keyId} written to ${path} (keep it secret; mode 0600)`);
      ctx.print(`public key: ${key.publicKey}`);
      ctx.print(`register it with the hub: edgefleet keys register --name <you> --key ${path}`);
      return 0;
    }
    const key = await loadSigningKey(optionalString(ctx, 'key') ?? defaultKeyPath());
    if (action === 'show') {
      ctx.printJson({ keyId: key.keyId, publicKey: key.publicKey });
      ctx.print(`${key.keyId}  ${key.publicKey}`);
      return 0;
    }
    if (action === 'register') {
      const name = optionalString(ctx, 'name');
      if (!name) throw new UsageError('keys register needs --name (who publishes with this key)');
      const registered = await hubClient(ctx).request<{ keyId: string; created: boolean }>('POST', '/keys', {
        name,
        publicKey: key.publicKey,
      });
      ctx.printJson(registered);
      ctx.print(
        `${registered.created ? 'registered' : 'already registered'}: key ${registered.keyId} as "${name}"`,
      );
      return 0;
    }
    throw new UsageError(`unknown action "${action}" (create, show or register)`);
  },
};
