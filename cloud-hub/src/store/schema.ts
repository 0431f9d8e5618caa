/**
 * The hub's tables as Kysely types. Timestamps are ISO-8601 text and JSON is text, in both SQLite
 * and PostgreSQL, so one set of queries serves both drivers.
 */
import type { Generated } from 'kysely';

export interface ApiTokenTable {
  id: string;
  name: string;
  role: string;
  token_hash: string;
  created_at: string;
  created_by: string | null;
  revoked_at: string | null;
}

export interface EnrollmentTokenTable {
  id: string;
  token_hash: string;
  uses_left: number;
  tags: string;
  expires_at: string;
  created_at: string;
  created_by: string | null;
  revoked_at: string | null;
}

export interface DeviceTable {
  id: string;
  name: string;
  tags: string;
  profile: string | null;
  facts: string;
  secret_hash: string;
  status: string;
  agent_version: string | null;
  status_changed_at: string | null;
  last_seen_at: string | null;
  reported: string | null;
  desired: string | null;
  desired_revision: number;
  last_telemetry: string | null;
  last_telemetry_seq: number;
  enrolled_at: string;
  revoked_at: string | null;
}

export interface TelemetryTable {
  device_id: string;
  seq: number;
  ts: string;
  received_at: string;
  data: string;
}

export interface StatsWindowTable {
  device_id: string;
  seq: number;
  model: string;
  version: string;
  start_ts: string;
  end_ts: string;
  received_at: string;
  window: string;
}

export interface ModelTable {
  name: string;
  created_at: string;
}

export interface ModelVersionTable {
  model: string;
  version: string;
  created_at: string;
  created_by: string | null;
  /** The exact signed manifest.json text. */
  manifest: string;
  manifest_sha256: string;
  signature: string;
  signed_by: string;
  source_format: string;
}

export interface VersionFileTable {
  model: string;
  version: string;
  file: string;
  sha256: string;
  size_bytes: number;
  kind: string;
}

export interface PublisherKeyTable {
  key_id: string;
  name: string;
  public_key: string;
  created_at: string;
  revoked_at: string | null;
}

export interface RolloutTable {
  id: string;
  model: string;
  version: string;
  selector: string;
  plan: string;
  state: string;
  state_reason: string | null;
  current_batch: number;
  created_at: string;
  created_by: string | null;
  updated_at: string;
  finished_at: string | null;
  soak_started_at: string | null;
  gates: string | null;
  approved_batch: number;
}

export interface RolloutDeviceTable {
  rollout_id: string;
  device_id: string;
  batch: number;
  state: string;
  artifact_sha256: string | null;
  reason: string | null;
  assigned_at: string | null;
  updated_at: string;
  previous: string | null;
  active_at: string | null;
}

export interface EventTable {
  id: Generated<number>;
  ts: string;
  kind: string;
  subject: string;
  actor: string | null;
  message: string;
  data: string | null;
}

export interface SettingTable {
  key: string;
  value: string;
}

export interface LeaseTable {
  name: string;
  holder: string;
  expires_at: string;
}

export interface ArtifactObjectTable {
  sha256: string;
  size_bytes: number;
  created_at: string;
}

export interface ArtifactChunkTable {
  sha256: string;
  idx: number;
  data: Uint8Array;
}

export interface AgentReleaseTable {
  version: string;
  arch: string;
  sha256: string;
  size_bytes: number;
  /** The exact signed release-manifest JSON text. */
  manifest_text: string;
  /** The signature file (JSON text) as published. */
  signature_text: string;
  created_at: string;
  created_by: string | null;
}

export interface Database {
  artifact_objects: ArtifactObjectTable;
  artifact_chunks: ArtifactChunkTable;
  api_tokens: ApiTokenTable;
  enrollment_tokens: EnrollmentTokenTable;
  devices: DeviceTable;
  telemetry: TelemetryTable;
  stats_windows: StatsWindowTable;
  models: ModelTable;
  model_versions: ModelVersionTable;
  version_files: VersionFileTable;
  publisher_keys: PublisherKeyTable;
  rollouts: RolloutTable;
  rollout_devices: RolloutDeviceTable;
  events: EventTable;
  settings: SettingTable;
  leases: LeaseTable;
  agent_releases: AgentReleaseTable;
}
