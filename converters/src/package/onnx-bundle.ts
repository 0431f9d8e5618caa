/**
 * Pack a conversion into a signed bundle: every artifact, the smoke test (sample inputs plus each
 * artifact's outputs on them, with a tolerance that admits another correct runtime), the drift
 * reference profile when one was built, and the conversion report in the manifest.
 */
import {
  type BundleManifestInput,
  describeFile,
  encodeTensor,
  type ImagePreprocessing,
  type PackedBundle,
  packBundle,
  type SigningKeyFile,
  type SmokeTestFile,
} from '@edgefleet/bundle';
import { type ConversionResult, convertModel } from '../convert/pipeline.ts';
import type { BuiltArtifact } from '../convert/types.ts';
import { runOnnx } from '../onnx/runtime.ts';

export const SMOKE_TEST_FILE = 'smoke-test.json';
export const REFERENCE_PROFILE_FILE = 'reference-profile.json';

export interface BundleOptions {
  name: string;
  version: string;
  key: SigningKeyFile;
  description?: string;
  labels?: string[];
  preprocessing?: ImagePreprocessing;
  /** A drift reference profile (JSON bytes) to ship as manifest.referenceProfile. */
  referenceProfile?: Uint8Array;
}

export interface PackageOnnxOptions extends Omit<BundleOptions, 'referenceProfile'> {
  source: Uint8Array;
}

/**
 * How far another correct runtime may land from our outputs: an fp32 file differs only by kernel
 * rounding; a reduced-precision one anywhere within its error band around fp32, so twice the band.
 */
function smokeTolerance(a: BuiltArtifact): { maxAbs: number; minCosine: number } {
  if (a.entry.precision === 'fp32') return { maxAbs: 1e-3, minCosine: 0.9999 };
  const worst = Math.max(0, ...a.report.runtimes.map((r) => r.worst?.maxAbsError ?? 0));
  return { maxAbs: Math.max(1e-3, 2 * worst), minCosine: a.entry.precision === 'fp16' ? 0.999 : 0.99 };
}

/** Sign and pack the artifacts of a conversion. */
export async function packConversion(result: ConversionResult, o: BundleOptions): Promise<PackedBundle> {
  const expected: SmokeTestFile['expected'] = {};
  for (const a of result.artifacts) {
    const own = a.smoke ? await a.smoke(result.smokeInputs) : undefined;
    const outputs = own?.outputs ?? (await runOnnx(a.bytes, result.smokeInputs));
    expected[a.entry.file] = {
      outputs: Object.fromEntries(Object.entries(outputs).map(([k, t]) => [k, encodeTensor(t)])),
      tolerance: own?.tolerance ?? smokeTolerance(a),
    };
  }
  const smoke: SmokeTestFile = {
    inputs: Object.fromEntries(Object.entries(result.smokeInputs).map(([k, t]) => [k, encodeTensor(t)])),
    expected,
  };
  const smokeBytes = new TextEncoder().encode(JSON.stringify(smoke));
  const files = new Map<string, Uint8Array>([[SMOKE_TEST_FILE, smokeBytes]]);
  const entries = [];
  for (const a of result.artifacts) {
    files.set(a.entry.file, a.bytes);
    const described = await describeFile(a.entry.file, a.bytes);
    entries.push({ ...a.entry, ...described, requires: a.entry.requires ?? [], report: { ...a.report } });
  }
  const source = await describeFile('source.onnx', result.originalBytes);
  if (o.referenceProfile) files.set(REFERENCE_PROFILE_FILE, o.referenceProfile);
  const { summary } = result;
  const opset = summary.opsets.find((x) => x.domain === '' || x.domain === 'ai.onnx')?.version;
  const manifest: BundleManifestInput = {
    format: 'edgefleet-bundle',
    formatVersion: 1,
    name: o.name,
    version: o.version,
    createdAt: new Date().toISOString(),
    ...(o.description ? { description: o.description } : {}),
    source: {
      format: 'onnx',
      sha256: source.sha256,
      size_bytes: source.size_bytes,
      ...(opset !== undefined ? { opset } : {}),
      ...(summary.producer ? { producer: summary.producer.slice(0, 256) } : {}),
    },
    inputs: summary.inputs,
    outputs: summary.outputs,
    artifacts: entries,
    smokeTest: await describeFile(SMOKE_TEST_FILE, smokeBytes),
    ...(o.referenceProfile
      ? { referenceProfile: await describeFile(REFERENCE_PROFILE_FILE, o.referenceProfile) }
      : {}),
    ...(o.labels ? { labels: o.labels } : {}),
    ...(o.preprocessing ? { preprocessing: o.preprocessing } : {}),
    conversion: { ...result.report, source: { ...result.report.source, sha256: source.sha256 } },
  };
  return packBundle(manifest, files, o.key);
}

/**
 * The fp32 "as is" bundle (what the hub makes of a raw .onnx upload): the same pipeline as
 * `convert --target cpu --quantize none`, with the smoke test run in onnxruntime-node.
 */
export async function packageOnnx(o: PackageOnnxOptions): Promise<PackedBundle> {
  const result = await convertModel(o.source, { targets: ['cpu'], quantize: 'none', verifyWasm: false });
  const { source: _source, ...bundle } = o;
  return packConversion(result, bundle);
}
