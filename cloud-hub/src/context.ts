/** The one context object every part of the hub receives. */

import type { SigningKeyFile } from '@edgefleet/bundle';
import type { TrustedKey } from '@edgefleet/protocol';
import type { Logger } from 'pino';
import type { ArtifactStore } from './artifacts/artifact-store.ts';
import type { BrokerLink } from './broker/link.ts';
import type { LiveBus } from './live.ts';
import type { Metrics } from './metrics.ts';
import type { Store } from './store/store.ts';

export interface HubSettings {
  /** Public base URL of the API (what agents and the CLI use). */
  publicUrl: string;
  dataDir: string;
  maxUploadBytes: number;
  /** Failed enrollment attempts allowed per client address per minute. */
  enrollPerMinute: number;
}

export interface HubContext {
  settings: HubSettings;
  store: Store;
  artifacts: ArtifactStore;
  broker: BrokerLink;
  logger: Logger;
  metrics: Metrics;
  live: LiveBus;
  /** The hub's own signing key: it signs bundles it builds from raw uploads. */
  signingKey: SigningKeyFile;
  /** This hub process, in leases and logs (replicas must differ). */
  replicaId: string;
  /** Drift status of a model version, when drift analysis runs (a rollout gate reads it). */
  driftStatus?: (
    model: string,
    version: string,
  ) => Promise<{ status: 'ok' | 'warning' | 'drift'; variables: string[] } | undefined>;
  /** Keys agents trust: the hub's plus registered publisher keys. */
  trustedKeys(): Promise<TrustedKey[]>;
}
