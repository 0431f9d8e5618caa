/** Published releases of the agent itself (self-update): one signed archive per version and arch. */
import type { Kysely } from 'kysely';
import { nowIso } from './json.ts';
import type { Database } from './schema.ts';

export interface AgentReleaseRecord {
  version: string;
  arch: string;
  sha256: string;
  sizeBytes: number;
  /** The exact signed release-manifest JSON text (what devices verify). */
  manifestText: string;
  /** The signature file as JSON text. */
  signatureText: string;
  createdAt: string;
  createdBy: string | null;
}

export interface NewAgentRelease extends Omit<AgentReleaseRecord, 'createdAt'> {}

function toRelease(r: Database['agent_releases']): AgentReleaseRecord {
  return {
    version: r.version,
    arch: r.arch,
    sha256: r.sha256,
    sizeBytes: Number(r.size_bytes),
    manifestText: r.manifest_text,
    signatureText: r.signature_text,
    createdAt: r.created_at,
    createdBy: r.created_by,
  };
}

export function agentReleasesRepo(db: Kysely<Database>) {
  return {
    /** Insert a release; false when that version and arch already exist (the first one stays). */
    async put(release: NewAgentRelease): Promise<boolean> {
      const r = await db
        .insertInto('agent_releases')
        .values({
          version: release.version,
          arch: release.arch,
          sha256: release.sha256,
          size_bytes: release.sizeBytes,
          manifest_text: release.manifestText,
          signature_text: release.signatureText,
          created_at: nowIso(),
          created_by: release.createdBy,
        })
        .onConflict((oc) => oc.columns(['version', 'arch']).doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
    },
    async get(version: string, arch: string): Promise<AgentReleaseRecord | undefined> {
      const row = await db
        .selectFrom('agent_releases')
        .selectAll()
        .where('version', '=', version)
        .where('arch', '=', arch)
        .executeTakeFirst();
      return row && toRelease(row);
    },
    /** Every release, newest first. */
    async list(): Promise<AgentReleaseRecord[]> {
      const rows = await db
        .selectFrom('agent_releases')
        .selectAll()
        .orderBy('created_at', 'desc')
        .orderBy('version', 'desc')
        .orderBy('arch')
        .execute();
      return rows.map(toRelease);
    },
    /** The arches one version was published for (empty when the version is unknown). */
    async listVersion(version: string): Promise<AgentReleaseRecord[]> {
      const rows = await db
        .selectFrom('agent_releases')
        .selectAll()
        .where('version', '=', version)
        .orderBy('arch')
        .execute();
      return rows.map(toRelease);
    },
  };
}
