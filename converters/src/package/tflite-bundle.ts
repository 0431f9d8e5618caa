/**
 * A signed bundle from an existing .tflite (what `edgefleet publish model.tflite` makes), with its
 * compiled `_edgetpu.tflite` when the user has one: the CPU model is target `tflite`, the compiled
 * one target `edgetpu` with the CPU model as its fallback. Both are checked before anything is
 * packed: the CPU model must load and run in TFLite (its outputs become the smoke test), the
 * compiled one must hold an Edge TPU package and have exactly the CPU model's inputs and outputs.
 */
import {
  type ArtifactEntry,
  type BundleManifestInput,
  describeFile,
  encodeTensor,
  type PackedBundle,
  type PlainTensor,
  packBundle,
  type SmokeTestFile,
  type TensorSpec,
} from '@edgefleet/bundle';
import { TOOL } from '../convert/pipeline.ts';
import { compiledMismatch, inspectEdgeTpu } from '../edgetpu/inspect.ts';
import { describeLint, lintEdgeTpu } from '../edgetpu/lint.ts';
import { seededRandom } from '../onnx/builder.ts';
import { TfliteError } from '../tflite/errors.ts';
import { type ModelT, TensorType } from '../tflite/generated/schema_generated.ts';
import { openTflite } from '../tflite/interpreter.ts';
import { readTflite } from '../tflite/read.ts';
import { dtypeOf, typeName } from '../tflite/types.ts';
import { type BundleOptions, SMOKE_TEST_FILE } from './onnx-bundle.ts';

export interface PackageTfliteOptions extends Omit<BundleOptions, 'referenceProfile'> {
  /** The CPU .tflite. */
  cpu: Uint8Array;
  /** Its compiled `_edgetpu.tflite`, if any. */
  edgetpu?: Uint8Array | undefined;
}

export const TFLITE_FILE = 'tflite/model.tflite';
export const EDGETPU_FILE = 'edgetpu/model_edgetpu.tflite';

function ioSpecs(model: ModelT, which: 'inputs' | 'outputs'): TensorSpec[] {
  const graph = model.subgraphs[0];
  return (graph?.[which] ?? []).map((index) => {
    const t = graph?.tensors[index];
    if (!t) throw new TfliteError('TFLITE_INVALID', `${which} tensor ${index} does not exist`);
    const dtype = dtypeOf(t.type);
    if (!dtype)
      throw new TfliteError('TFLITE_UNSUPPORTED', `${which} tensor "${t.name}" is ${typeName(t.type)}`);
    const scale = t.quantization?.scale[0];
    const zeroPoint = t.quantization?.zeroPoint[0];
    return {
      name: String(t.name ?? `${which}_${index}`),
      // A -1 in the signature is a dynamic dimension: the bundle names it.
      shape: t.shape.map((d, i) => ((t.shapeSignature[i] ?? d) < 0 ? `dim${i}` : d)),
      dtype,
      ...((dtype === 'int8' || dtype === 'uint8') && scale
        ? { quantization: { scale, zeroPoint: Number(zeroPoint ?? 0) } }
        : {}),
    };
  });
}

/** int8/uint8 when all compute is integer, fp32 when all float, mixed for hybrids. */
function precisionOf(model: ModelT, inputs: TensorSpec[]): ArtifactEntry['precision'] {
  const constants = model.subgraphs
    .flatMap((g) => g.tensors)
    .filter((t) => (model.buffers[t.buffer]?.data.length ?? 0) > 0);
  const floats = constants.some((t) => t.type === TensorType.FLOAT32 || t.type === TensorType.FLOAT16);
  const ints = constants.some((t) => t.type === TensorType.INT8 || t.type === TensorType.UINT8);
  if (ints && floats) return 'mixed';
  if (!ints) return 'fp32';
  return inputs.some((i) => i.dtype === 'uint8') ? 'uint8' : 'int8';
}

/** Seeded inputs in each tensor's own type (dynamic dims as 1). */
function smokeInputs(specs: TensorSpec[]): Record<string, PlainTensor> {
  const rand = seededRandom(7);
  const feeds: Record<string, PlainTensor> = {};
  for (const s of specs) {
    const shape = s.shape.map((d) => (typeof d === 'number' ? d : 1));
    const n = shape.reduce((a, b) => a * b, 1);
    const data =
      s.dtype === 'int8'
        ? Int8Array.from({ length: n }, () => Math.floor(rand() * 256) - 128)
        : s.dtype === 'uint8'
          ? Uint8Array.from({ length: n }, () => Math.floor(rand() * 256))
          : s.dtype === 'float32'
            ? Float32Array.from({ length: n }, () => rand() * 2 - 1)
            : undefined;
    if (!data)
      throw new TfliteError(
        'TFLITE_UNSUPPORTED',
        `input "${s.name}" is ${s.dtype}: no smoke test input for it`,
      );
    feeds[s.name] = { dtype: s.dtype, shape, data };
  }
  return feeds;
}

/** Package a .tflite (and its `_edgetpu` twin) into a signed bundle. */
export async function packageTflite(o: PackageTfliteOptions): Promise<PackedBundle> {
  const model = readTflite(o.cpu);
  const lint = lintEdgeTpu(model);
  if (lint.compiled)
    throw new TfliteError(
      'TFLITE_UNSUPPORTED',
      'this .tflite is compiled for the Edge TPU and cannot run without one: publish the CPU model and pass the compiled file as its edgetpu twin',
    );
  const inputs = ioSpecs(model, 'inputs');
  const outputs = ioSpecs(model, 'outputs');
  const precision = precisionOf(model, inputs);
  const notes = [`Edge TPU lint of the CPU model: ${describeLint(lint)}`];

  let compiled: ReturnType<typeof inspectEdgeTpu> | undefined;
  if (o.edgetpu) {
    compiled = inspectEdgeTpu(o.edgetpu);
    if (!compiled.compiled)
      throw new TfliteError(
        'EDGETPU_INVALID',
        'the edgetpu file holds no edgetpu-custom-op: it is not compiled',
      );
    const mismatch = compiledMismatch(o.edgetpu, o.cpu);
    if (mismatch)
      throw new TfliteError(
        'EDGETPU_INVALID',
        `the edgetpu file is not compiled from this model: ${mismatch}`,
      );
  }

  // The smoke test: what this TFLite build computes; the device must agree within two steps.
  const feeds = smokeInputs(inputs);
  const session = openTflite(o.cpu);
  const ran = session.run(feeds);
  const integer = precision === 'int8' || precision === 'uint8';
  const expectedOutputs = Object.fromEntries(Object.entries(ran).map(([k, t]) => [k, encodeTensor(t)]));
  const expected: SmokeTestFile['expected'] = {
    [TFLITE_FILE]: {
      outputs: expectedOutputs,
      tolerance: integer ? { maxAbs: 2, minCosine: 0.99 } : { maxAbs: 1e-3, minCosine: 0.9999 },
    },
  };
  const files = new Map<string, Uint8Array>([[TFLITE_FILE, o.cpu]]);
  const edgetpuReport = {
    summary: lint.summary,
    mappedOps: lint.mapped,
    totalOps: lint.total,
    ...(lint.firstCpuOp ? { firstCpuOp: lint.firstCpuOp } : {}),
  };
  const artifacts: BundleManifestInput['artifacts'] = [];
  if (o.edgetpu && compiled) {
    files.set(EDGETPU_FILE, o.edgetpu);
    // The Edge TPU's arithmetic differs slightly from TFLite's kernels.
    expected[EDGETPU_FILE] = {
      outputs: expectedOutputs,
      tolerance: integer ? { maxAbs: 3, minCosine: 0.98 } : { maxAbs: 1e-2, minCosine: 0.99 },
    };
    artifacts.push({
      ...(await describeFile(EDGETPU_FILE, o.edgetpu)),
      target: 'edgetpu',
      runtime: 'tflite',
      precision,
      minRuntimeVersion: String(compiled.minRuntimeVersion),
      requires: ['edgetpu'],
      fallback: TFLITE_FILE,
      inputs,
      outputs,
      report: {
        edgetpu: {
          ...edgetpuReport,
          compilation: 'compiled',
          compilers: compiled.compilerVersions,
          parameterBytes: compiled.parameterBytes,
          cpuOps: compiled.cpuOps,
        },
      },
    });
  }
  artifacts.push({
    ...(await describeFile(TFLITE_FILE, o.cpu)),
    target: 'tflite',
    runtime: 'tflite',
    precision,
    requires: [],
    inputs,
    outputs,
    report: { edgetpu: edgetpuReport },
  });
  const smoke: SmokeTestFile = {
    inputs: Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, encodeTensor(t)])),
    expected,
  };
  const smokeBytes = new TextEncoder().encode(JSON.stringify(smoke));
  files.set(SMOKE_TEST_FILE, smokeBytes);
  const source = await describeFile('source.tflite', o.cpu);
  const manifest: BundleManifestInput = {
    format: 'edgefleet-bundle',
    formatVersion: 1,
    name: o.name,
    version: o.version,
    createdAt: new Date().toISOString(),
    ...(o.description ? { description: o.description } : {}),
    source: { format: 'tflite', sha256: source.sha256, size_bytes: source.size_bytes },
    inputs,
    outputs,
    artifacts,
    smokeTest: await describeFile(SMOKE_TEST_FILE, smokeBytes),
    ...(o.labels ? { labels: o.labels } : {}),
    ...(o.preprocessing ? { preprocessing: o.preprocessing } : {}),
    conversion: { tool: TOOL, notes },
  };
  return packBundle(manifest, files, o.key);
}
