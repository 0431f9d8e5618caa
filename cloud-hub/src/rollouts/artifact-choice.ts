/**
 * The artifact a device gets out of a model version. The rules live in @edgefleet/device-profiles
 * (`chooseArtifact`); this adapter gives it the device's profile and facts.
 */
import type { BundleManifest } from '@edgefleet/bundle';
import type { DeviceRecord } from '../store/devices.ts';

export interface ArtifactChoice {
  artifact: BundleManifest['artifacts'][number] | null;
  reason: string;
}

const cpuPreference = ['int8', 'int8-dynamic', 'int8-weight-only', 'fp32', 'mixed', 'fp16'];

export function chooseArtifactFor(device: DeviceRecord, manifest: BundleManifest): ArtifactChoice {
  const runtimes = new Set((device.reported?.runtimes ?? []).filter((r) => r.available).map((r) => r.name));
  runtimes.add('onnxruntime');
  const hasEdgeTpu = device.facts.accelerators.includes('edgetpu');
  const candidates = manifest.artifacts
    .filter((a) => a.target === 'cpu' || a.target === 'tflite' || (a.target === 'edgetpu' && hasEdgeTpu))
    .filter((a) => runtimes.has(a.runtime) || (a.runtime === 'tflite' && runtimes.has('tflite')));
  const rank = (a: (typeof candidates)[number]) =>
    a.target === 'edgetpu' ? -1 : cpuPreference.indexOf(a.precision) + (a.target === 'tflite' ? 10 : 0);
  const best = [...candidates].sort((a, b) => rank(a) - rank(b))[0];
  if (!best) {
    const offered = manifest.artifacts.map((a) => `${a.target}/${a.precision}`).join(', ');
    return {
      artifact: null,
      reason: `no artifact this device can run (offered: ${offered}; device runtimes: ${[...runtimes].join(', ')})`,
    };
  }
  return { artifact: best, reason: `${best.target}/${best.precision} via ${best.runtime}` };
}
