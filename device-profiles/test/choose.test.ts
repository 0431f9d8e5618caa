import { type ArtifactEntry, artifactEntry } from '@edgefleet/bundle';
import {
  type ChoiceFacts,
  chooseArtifact,
  getProfile,
  preferenceRank,
  reportedRuntime,
} from '@edgefleet/device-profiles';
import { describe, expect, it } from 'vitest';

const MB = 1024 * 1024;
let n = 0;
function artifact(
  file: string,
  target: ArtifactEntry['target'],
  precision: ArtifactEntry['precision'],
  extra: Partial<ArtifactEntry> = {},
): ArtifactEntry {
  n += 1;
  return artifactEntry.parse({
    file,
    target,
    precision,
    runtime: target === 'edgetpu' || target === 'tflite' ? 'tflite' : 'onnxruntime',
    sha256: n.toString(16).padStart(64, '0'),
    size_bytes: 4 * MB,
    ...extra,
  });
}

/** What `edgefleet convert --target all` makes of one model: CPU int8 + fp32, WebGPU fp16, Edge TPU + twin. */
const full = {
  name: 'classifier',
  version: '1.2.0',
  artifacts: [
    artifact('cpu/model.onnx', 'cpu', 'fp32', { size_bytes: 16 * MB }),
    artifact('cpu/model-int8.onnx', 'cpu', 'int8', { fallback: 'cpu/model.onnx' }),
    artifact('webgpu/model-fp16.onnx', 'webgpu', 'fp16', {
      size_bytes: 8 * MB,
      requires: ['shader-f16'],
      fallback: 'cpu/model.onnx',
    }),
    artifact('webgpu/model-int8-weight-only.onnx', 'webgpu', 'int8-weight-only'),
    artifact('tflite/model.tflite', 'tflite', 'int8'),
    artifact('edgetpu/model_edgetpu.tflite', 'edgetpu', 'int8', {
      requires: ['edgetpu'],
      fallback: 'tflite/model.tflite',
    }),
  ],
};
const chosen = (
  profile: string,
  manifest: { artifacts: ArtifactEntry[]; name?: string; version?: string } = full,
  facts: ChoiceFacts = {},
) => chooseArtifact(getProfile(profile), manifest, facts).artifact?.file ?? null;

describe('artifact choice per device', () => {
  it('gives a mixed fleet three different artifacts of one model version', () => {
    expect(chosen('linux-x64')).toBe('cpu/model-int8.onnx');
    expect(chosen('rpi-coral-usb')).toBe('edgetpu/model_edgetpu.tflite');
    expect(chosen('browser-webgpu', full, { features: ['webgpu', 'shader-f16'] })).toBe(
      'webgpu/model-fp16.onnx',
    );
  });

  it('Coral USB → Edge TPU, else int8 CPU, else fp32', () => {
    const onlyFp32 = { artifacts: full.artifacts.filter((a) => a.file === 'cpu/model.onnx') };
    const noTpu = { artifacts: full.artifacts.filter((a) => a.target !== 'edgetpu') };
    expect(chosen('rpi-coral-usb')).toBe('edgetpu/model_edgetpu.tflite');
    expect(chosen('rpi-coral-usb', noTpu)).toBe('cpu/model-int8.onnx');
    expect(chosen('rpi-coral-usb', onlyFp32)).toBe('cpu/model.onnx');
    expect(chosen('rpi4')).toBe('cpu/model-int8.onnx');
    expect(chosen('coral-dev-board')).toBe('edgetpu/model_edgetpu.tflite');
    expect(chosen('coral-dev-board-mini')).toBe('edgetpu/model_edgetpu.tflite');
    expect(chosen('jetson-nano')).toBe('cpu/model-int8.onnx');
  });

  it('says why, naming the Edge TPU and the fallback twin', () => {
    const c = chooseArtifact(getProfile('rpi-coral-usb'), full);
    expect(c.reason).toBe(
      "edgetpu/int8 (edgetpu/model_edgetpu.tflite) via tflite-edgetpu: first in rpi-coral-usb's preference order; the rpi-coral-usb profile includes the Coral USB Accelerator; falls back to tflite/model.tflite on the device if it cannot load",
    );
    expect(c.rejected.map((r) => `${r.file}: ${r.reason}`)).toEqual([
      'cpu/model-int8.onnx: rpi-coral-usb prefers edgetpu/int8 (edgetpu/model_edgetpu.tflite)',
      'cpu/model.onnx: rpi-coral-usb prefers edgetpu/int8 (edgetpu/model_edgetpu.tflite)',
      'tflite/model.tflite: rpi-coral-usb prefers edgetpu/int8 (edgetpu/model_edgetpu.tflite)',
      "webgpu/model-fp16.onnx: webgpu/fp16 is not in rpi-coral-usb's preference list",
      "webgpu/model-int8-weight-only.onnx: webgpu/int8-weight-only is not in rpi-coral-usb's preference list",
    ]);
  });

  it('uses an Edge TPU on a generic box only when the device found one', () => {
    expect(chosen('linux-x64', full, { accelerators: [] })).toBe('cpu/model-int8.onnx');
    const c = chooseArtifact(getProfile('linux-x64'), full, { accelerators: ['edgetpu'] });
    expect(c.artifact?.file).toBe('edgetpu/model_edgetpu.tflite');
    expect(c.reason).toMatch(/an Edge TPU was found on the device/);
    const without = chooseArtifact(getProfile('linux-arm64'), full);
    expect(without.rejected.find((r) => r.target === 'edgetpu')?.reason).toBe(
      'no Edge TPU found on the device',
    );
  });

  it('skips the Edge TPU file when the device reports its runtime unavailable, and says so', () => {
    const c = chooseArtifact(getProfile('rpi-coral-usb'), full, {
      runtimes: [
        { name: 'onnxruntime-cpu', available: true },
        { name: 'tflite+edgetpu', available: false, reason: 'libedgetpu.so.1 not found' },
      ],
    });
    expect(c.artifact?.file).toBe('cpu/model-int8.onnx');
    expect(c.reason).toMatch(
      /best rpi-coral-usb can run; skipped edgetpu\/int8 \(tflite\+edgetpu is unavailable on the device \(libedgetpu\.so\.1 not found\)\)/,
    );
  });

  it('browsers: fp16 WebGPU only with shader-f16, else int8 WebGPU, else WASM', () => {
    expect(chosen('browser-webgpu', full, { features: ['webgpu', 'shader-f16'] })).toBe(
      'webgpu/model-fp16.onnx',
    );
    const noF16 = chooseArtifact(getProfile('browser-webgpu'), full, { features: ['webgpu'] });
    expect(noF16.artifact?.file).toBe('webgpu/model-int8-weight-only.onnx');
    expect(noF16.reason).toMatch(
      /skipped webgpu\/fp16 \(needs shader-f16, which this device has not reported\)/,
    );
    expect(chosen('browser-wasm')).toBe('cpu/model-int8.onnx');
    const onlyWebgpu = { artifacts: full.artifacts.filter((a) => a.target === 'webgpu') };
    expect(chosen('browser-wasm', onlyWebgpu)).toBe('webgpu/model-int8-weight-only.onnx');
    // A WebGPU browser with only CPU files runs fp32 on the GPU rather than QDQ int8 (CPU-bound there).
    const cpuOnly = { artifacts: full.artifacts.filter((a) => a.target === 'cpu') };
    expect(chosen('browser-webgpu', cpuOnly, { features: ['webgpu'] })).toBe('cpu/model.onnx');
  });

  it('never sends Edge TPU or WebGPU files where they cannot run', () => {
    const tpuOnly = { artifacts: full.artifacts.filter((a) => a.target === 'edgetpu') };
    const c = chooseArtifact(getProfile('browser-webgpu'), tpuOnly, { features: ['webgpu'] });
    expect(c.artifact).toBeNull();
    expect(c.reason).toBe(
      "no artifact of this model suits browser-webgpu (edgetpu/model_edgetpu.tflite: edgetpu/int8 is not in browser-webgpu's preference list)",
    );
    const gpuOnly = { artifacts: full.artifacts.filter((a) => a.target === 'webgpu') };
    expect(chosen('rpi5', gpuOnly)).toBeNull();
  });

  it('a model over the size limit gets no artifact, with why; memory lowers the limit', () => {
    const huge = {
      name: 'llm',
      version: '1.0.0',
      artifacts: [artifact('cpu/model.onnx', 'cpu', 'fp32', { size_bytes: 300 * MB })],
    };
    const pi3 = chooseArtifact(getProfile('rpi3'), huge);
    expect(pi3.artifact).toBeNull();
    expect(pi3.reason).toBe(
      "no artifact of llm@1.0.0 suits rpi3 (cpu/model.onnx: 300 MB is over rpi3's limit of 128 MB)",
    );
    expect(chosen('rpi4', huge)).toBe('cpu/model.onnx');
    const small = chooseArtifact(getProfile('rpi4'), huge, { memTotalMb: 1024 });
    expect(small.artifact).toBeNull();
    expect(small.reason).toMatch(/300 MB is over 25% of the device's 1024 MB memory \(256 MB\)/);
  });

  it('a bigger int8 file that is over the limit yields to a smaller one further down the order', () => {
    const m = {
      artifacts: [
        artifact('cpu/model-int8.onnx', 'cpu', 'int8', { size_bytes: 200 * MB }),
        artifact('tflite/model.tflite', 'tflite', 'int8', { size_bytes: 100 * MB }),
      ],
    };
    expect(chosen('rpi3', m)).toBe('tflite/model.tflite');
  });

  it('respects minimum runtime versions the device reports', () => {
    const m = { artifacts: [artifact('cpu/model.onnx', 'cpu', 'fp32', { minRuntimeVersion: '1.31.0' })] };
    const old = chooseArtifact(getProfile('linux-x64'), m, {
      runtimes: [{ name: 'onnxruntime-cpu', available: true, version: '1.30.0' }],
    });
    expect(old.artifact).toBeNull();
    expect(old.reason).toMatch(/needs onnxruntime-node 1\.31\.0 or later; the device has 1\.30\.0/);
    expect(
      chosen('linux-x64', m, { runtimes: [{ name: 'onnxruntime-cpu', available: true, version: '1.31.2' }] }),
    ).toBe('cpu/model.onnx');
    expect(chosen('linux-x64', m)).toBe('cpu/model.onnx');
  });

  it('is deterministic: equal ranks keep manifest order', () => {
    const twins = {
      artifacts: [artifact('cpu/a.onnx', 'cpu', 'fp32'), artifact('cpu/b.onnx', 'cpu', 'fp32')],
    };
    expect(chosen('linux-x64', twins)).toBe('cpu/a.onnx');
  });
});

describe('helpers', () => {
  it('maps reported runtime names onto profile runtimes', () => {
    expect(reportedRuntime('onnxruntime-cpu', 'linux')).toBe('onnxruntime-node');
    expect(reportedRuntime('onnxruntime-web', 'browser')).toBe('onnxruntime-web');
    expect(reportedRuntime('tfjs-tflite', 'browser')).toBe('tflite');
    expect(reportedRuntime('tflite+edgetpu', 'linux')).toBe('tflite-edgetpu');
    expect(reportedRuntime('something-else', 'linux')).toBeUndefined();
  });

  it('ranks by the first matching preference entry, wildcards included', () => {
    const rpi = getProfile('rpi-coral-usb');
    expect(preferenceRank(rpi, artifact('e.tflite', 'edgetpu', 'uint8'))).toBe(0);
    expect(preferenceRank(rpi, artifact('c.onnx', 'cpu', 'int8'))).toBe(1);
    expect(preferenceRank(rpi, artifact('w.onnx', 'webgpu', 'fp16'))).toBe(-1);
  });
});
