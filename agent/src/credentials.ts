/** The device identity from enrollment, kept in DIR/credentials.json with mode 0600. */
import { chmod, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type EnrollResponse, enrollResponse } from '@edgefleet/protocol';
import { z } from 'zod';
import { AgentError } from './errors.ts';
import { readJson, writeFileAtomic } from './files.ts';

export const credentialsFile = enrollResponse.extend({
  hub: z.string().url(),
  enrolledAt: z.string(),
  /** The CA the hub's certificate chains to, pinned at enrollment when the hub uses a private one. */
  caPem: z.string().optional(),
});
export type Credentials = z.infer<typeof credentialsFile>;

export const credentialsPath = (dataDir: string) => join(dataDir, 'credentials.json');

export async function loadCredentials(dataDir: string): Promise<Credentials | undefined> {
  const path = credentialsPath(dataDir);
  const raw = await readJson<unknown>(path);
  if (raw === undefined) return undefined;
  const parsed = credentialsFile.safeParse(raw);
  if (!parsed.success) throw new AgentError('NOT_ENROLLED', `${path} is damaged; remove it and enroll again`);
  // Tighten permissions if someone loosened them.
  if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
  return parsed.data;
}

export async function saveCredentials(
  dataDir: string,
  hub: string,
  response: EnrollResponse,
  caPem?: string,
): Promise<Credentials> {
  const credentials: Credentials = {
    ...response,
    hub,
    enrolledAt: new Date().toISOString(),
    ...(caPem ? { caPem } : {}),
  };
  await writeFileAtomic(credentialsPath(dataDir), `${JSON.stringify(credentials, null, 2)}\n`, 0o600);
  return credentials;
}
