/**
 * Which artifact of a model version a device should get. Pure: the same profile, manifest and facts
 * always give the same answer, and every artifact left out says why, so the hub can show the choice
 * and a device with nothing suitable gets a clear status instead of a silent skip.
 */
import type { ArtifactEntry, BundleManifest } from '@edgefleet/bundle';
import type { DeviceProfile, RuntimeName } from './schema.ts';

/** What the hub knows about one device beyond its profile (all optional). */
export interface ChoiceFacts {
  /** Accelerators found on the device (enrollment facts): `edgetpu`, `webgpu`. */
  accelerators?: string[];
  /** Capabilities the device reports (browsers: `webgpu`, `shader-f16`). */
  features?: string[];
  /** Runtimes as the device reported them (agent backends, SDK engines). */
  runtimes?: { name: string; available: boolean; reason?: string; version?: string }[];
  memTotalMb?: number;
}

export interface Rejection {
  file: string;
  target: string;
  precision: string;
  reason: string;
}

export interface ArtifactChoice {
  artifact: ArtifactEntry | null;
  /** One sentence a user can act on: why this artifact, or why none. */
  reason: string;
  /** Every artifact not chosen, with why, in preference order (unrunnable ones say what they lack). */
  rejected: Rejection[];
}

const MB = 1024 * 1024;
const mb = (bytes: number) => `${(bytes / MB).toFixed(bytes < 10 * MB ? 1 : 0)} MB`;

/** The device-side runtime an artifact needs on a device of this kind. */
export function runtimeFor(artifact: ArtifactEntry, kind: DeviceProfile['kind']): RuntimeName {
  if (artifact.runtime === 'tflite') return artifact.target === 'edgetpu' ? 'tflite-edgetpu' : 'tflite';
  return kind === 'browser' ? 'onnxruntime-web' : 'onnxruntime-node';
}

/** Which profile runtime a reported runtime name stands for (`onnxruntime-cpu` → `onnxruntime-node`). */
export function reportedRuntime(name: string, kind: DeviceProfile['kind']): RuntimeName | undefined {
  const n = name.toLowerCase();
  if (n.includes('edgetpu') || n.includes('coral')) return 'tflite-edgetpu';
  if (n.includes('tflite')) return 'tflite';
  if (n.includes('onnxruntime') || n === 'webgpu' || n === 'wasm')
    return kind === 'browser' ? 'onnxruntime-web' : 'onnxruntime-node';
  return undefined;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split(/[.+-]/).map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The rank of an artifact in the profile's preference order, or -1 when no entry matches. */
export function preferenceRank(profile: DeviceProfile, artifact: ArtifactEntry): number {
  return profile.preference.findIndex((entry) => {
    const [target, precision] = entry.split('/');
    return (
      (target === '*' || target === artifact.target) &&
      (precision === '*' || precision === artifact.precision)
    );
  });
}

interface DeviceView {
  features: Set<string>;
  edgeTpu: { present: boolean; why: string };
  unavailable: Map<RuntimeName, string>;
  versions: Map<RuntimeName, string>;
  limit: { bytes: number; why: string };
}

function viewOf(profile: DeviceProfile, facts: ChoiceFacts): DeviceView {
  const features = new Set([...profile.features, ...(facts.features ?? []), ...(facts.accelerators ?? [])]);
  for (const a of profile.accelerators) if (a.presence === 'builtin') features.add(a.kind);
  const tpu = profile.accelerators.find((a) => a.kind === 'edgetpu');
  const seen = (facts.accelerators ?? []).includes('edgetpu') || (facts.features ?? []).includes('edgetpu');
  const edgeTpu = !tpu
    ? { present: false, why: `${profile.id} has no Edge TPU` }
    : tpu.presence === 'builtin'
      ? { present: true, why: `the ${profile.id} profile includes the ${tpu.name}` }
      : {
          present: seen,
          why: seen ? `an Edge TPU was found on the device` : 'no Edge TPU found on the device',
        };
  if (!edgeTpu.present) features.delete('edgetpu');

  const unavailable = new Map<RuntimeName, string>();
  const versions = new Map<RuntimeName, string>();
  const available = new Set<RuntimeName>();
  for (const r of facts.runtimes ?? []) {
    const rt = reportedRuntime(r.name, profile.kind);
    if (!rt) continue;
    if (r.available) available.add(rt);
    else unavailable.set(rt, `${r.name} is unavailable on the device${r.reason ? ` (${r.reason})` : ''}`);
    if (r.version) versions.set(rt, r.version);
  }
  for (const rt of available) unavailable.delete(rt);

  let limit = {
    bytes: profile.limits.maxModelBytes,
    why: `${profile.id}'s limit of ${mb(profile.limits.maxModelBytes)}`,
  };
  if (facts.memTotalMb && facts.memTotalMb > 0) {
    const byMemory = Math.floor(facts.memTotalMb * MB * profile.limits.maxModelMemoryFraction);
    if (byMemory < limit.bytes)
      limit = {
        bytes: byMemory,
        why: `${Math.round(profile.limits.maxModelMemoryFraction * 100)}% of the device's ${facts.memTotalMb} MB memory (${mb(byMemory)})`,
      };
  }
  return { features, edgeTpu, unavailable, versions, limit };
}

/** Why this device cannot take `a`, or undefined when it can. */
function rejectionOf(profile: DeviceProfile, a: ArtifactEntry, view: DeviceView): string | undefined {
  if (preferenceRank(profile, a) < 0)
    return `${a.target}/${a.precision} is not in ${profile.id}'s preference list`;
  const rt = runtimeFor(a, profile.kind);
  if (a.target === 'edgetpu' && !view.edgeTpu.present) return view.edgeTpu.why;
  if (!profile.runtimes.includes(rt)) return `${profile.id} has no ${rt} runtime`;
  const down = view.unavailable.get(rt);
  if (down) return down;
  const needs = new Set(a.requires);
  if (a.target === 'webgpu' && a.precision === 'fp16') needs.add('shader-f16');
  const missing = [...needs].filter((f) => !view.features.has(f));
  if (missing.length > 0) return `needs ${missing.join(', ')}, which this device has not reported`;
  if (a.size_bytes > view.limit.bytes) return `${mb(a.size_bytes)} is over ${view.limit.why}`;
  const have = view.versions.get(rt);
  if (a.minRuntimeVersion && have && compareVersions(have, a.minRuntimeVersion) < 0)
    return `needs ${rt} ${a.minRuntimeVersion} or later; the device has ${have}`;
  return undefined;
}

/** Pick the artifact of `manifest` a device of `profile` should run, and say why. */
export function chooseArtifact(
  profile: DeviceProfile,
  manifest: Pick<BundleManifest, 'artifacts'> & Partial<Pick<BundleManifest, 'name' | 'version'>>,
  facts: ChoiceFacts = {},
): ArtifactChoice {
  const view = viewOf(profile, facts);
  const ranked = manifest.artifacts
    .map((a, order) => ({ a, order, rank: preferenceRank(profile, a), why: rejectionOf(profile, a, view) }))
    .sort((x, y) => (x.rank < 0 ? 1e9 : x.rank) - (y.rank < 0 ? 1e9 : y.rank) || x.order - y.order);
  const best = ranked.find((x) => !x.why);
  const prefers = best ? `${profile.id} prefers ${best.a.target}/${best.a.precision} (${best.a.file})` : '';
  const rejected = ranked
    .filter((x) => x !== best)
    .map((x) => ({ file: x.a.file, target: x.a.target, precision: x.a.precision, reason: x.why ?? prefers }));
  const what = manifest.name
    ? `${manifest.name}${manifest.version ? `@${manifest.version}` : ''}`
    : 'this model';
  if (!best) {
    const list = rejected.map((r) => `${r.file}: ${r.reason}`).join('; ');
    return { artifact: null, reason: `no artifact of ${what} suits ${profile.id} (${list})`, rejected };
  }
  const a = best.a;
  const skipped = ranked.filter((x) => x.why && x.rank >= 0 && x.rank < best.rank);
  let reason = `${a.target}/${a.precision} (${a.file}) via ${runtimeFor(a, profile.kind)}: ${
    skipped.length === 0 ? `first in ${profile.id}'s preference order` : `best ${profile.id} can run`
  }`;
  if (a.target === 'edgetpu') reason += `; ${view.edgeTpu.why}`;
  if (skipped.length > 0)
    reason += `; skipped ${skipped.map((x) => `${x.a.target}/${x.a.precision} (${x.why})`).join(', ')}`;
  if (a.fallback) reason += `; falls back to ${a.fallback} on the device if it cannot load`;
  return { artifact: a, reason, rejected };
}
