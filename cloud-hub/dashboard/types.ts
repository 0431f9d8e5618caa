/** The API shapes the dashboard reads (type-only imports: nothing of the hub ships to the browser). */
import type { ReportedState, TelemetrySample } from '@edgefleet/protocol';
import type { DeviceRecord } from '../src/store/devices.ts';
import type { EventRecord } from '../src/store/events.ts';
import type { RolloutDeviceRecord, RolloutRecord } from '../src/store/rollouts.ts';

export type Device = DeviceRecord & { lastTelemetryAgeSeconds: number | null };
export type { EventRecord, ReportedState, TelemetrySample };

export interface GateReading {
  gate: string;
  status: 'pass' | 'fail' | 'insufficient-data' | 'not-configured';
  baseline: number | null;
  candidate: number | null;
  limit: number | null;
  detail: string;
}

export type Rollout = RolloutRecord & {
  counts: Record<string, number>;
  total?: number;
  devices?: RolloutDeviceRecord[];
  events?: EventRecord[];
  gates: {
    readings?: GateReading[];
    evaluatedAt?: string;
    shadow?: { startedAt: string; devices: string[]; done: boolean };
  } | null;
};

export interface ModelSummary {
  name: string;
  createdAt: string;
  versions: { version: string; createdAt: string; signedBy: string }[];
}

export interface VersionView {
  model: string;
  version: string;
  createdAt: string;
  createdBy: string | null;
  signedBy: string;
  sourceFormat: string;
  manifest: {
    artifacts: {
      file: string;
      target: string;
      precision: string;
      runtime: string;
      size_bytes: number;
      report?: Record<string, unknown>;
    }[];
    inputs: { name: string; shape: (number | string)[]; dtype: string }[];
    outputs: { name: string; shape: (number | string)[]; dtype: string }[];
    labels?: string[];
    conversion?: Record<string, unknown>;
  };
  files: { file: string; sha256: string; sizeBytes: number; kind: string }[];
}

export interface Me {
  kind: 'token' | 'device';
  role: 'admin' | 'operator' | 'viewer' | 'device';
  name?: string;
}
