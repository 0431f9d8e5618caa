/** First-start state: the hub's signing key, the broker bridge secret and the first admin token. */
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { generateSigningKey, type SigningKeyFile, signingKeyFile } from '@edgefleet/bundle';
import { generateSecret, hashSecret, newId } from './auth/secrets.ts';
import type { Store } from './store/store.ts';

export async function hubSigningKey(store: Store): Promise<SigningKeyFile> {
  const text = await store.settings.getOrCreate('hub.signing-key', async () =>
    JSON.stringify(await generateSigningKey()),
  );
  return signingKeyFile.parse(JSON.parse(text));
}

/** The secret the hub's own MQTT connection uses with the embedded broker. */
export function brokerBridgeSecret(store: Store): Promise<string> {
  return store.settings.getOrCreate('hub.broker-secret', () => generateSecret('hub'));
}

export interface AdminTokenResult {
  /** Set when a token was created now and written to `file`. */
  createdFile?: string;
  fromEnv: boolean;
}

/**
 * Make sure an admin can get in: take EDGEFLEET_ADMIN_TOKEN when given, else on first start
 * create a token and write it to DIR/admin-token (mode 0600).
 */
export async function ensureAdminToken(
  store: Store,
  dataDir: string,
  envToken: string | undefined,
): Promise<AdminTokenResult> {
  if (envToken) {
    if (!(await store.tokens.findActiveApiToken(hashSecret(envToken)))) {
      await store.tokens.insertApiToken({
        id: newId('tok'),
        name: 'admin (EDGEFLEET_ADMIN_TOKEN)',
        role: 'admin',
        hash: hashSecret(envToken),
        createdBy: 'hub',
      });
    }
    return { fromEnv: true };
  }
  if ((await store.tokens.countActiveAdmins()) > 0) return { fromEnv: false };
  const token = generateSecret('api');
  await store.tokens.insertApiToken({
    id: newId('tok'),
    name: 'admin (first start)',
    role: 'admin',
    hash: hashSecret(token),
    createdBy: 'hub',
  });
  const file = join(dataDir, 'admin-token');
  await writeFile(file, `${token}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return { createdFile: file, fromEnv: false };
}
