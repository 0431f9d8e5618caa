export { type ConvertFileOptions, type ConvertFileResult, convertOnnxFile } from './convert/file.ts';
export { type ConversionResult, convertModel, TOOL } from './convert/pipeline.ts';
export { buildReference, type ReferenceResult, type ReferenceRows } from './convert/reference.ts';
export { checkTargetSupport, type OnnxTarget, type SupportCheck } from './convert/support.ts';
export {
  knownTargets,
  registerTarget,
  type TargetBuild,
  type TargetBuilder,
  type TargetContext,
} from './convert/targets.ts';
export {
  type ArtifactReport,
  type BuiltArtifact,
  type ConversionReport,
  type ConvertOptions,
  DEFAULT_TOLERANCES,
  type EdgeTpuReport,
  type Precision,
  type QuantizeMode,
  type Tolerance,
} from './convert/types.ts';
export {
  IMAGE_EXTENSIONS,
  imageToTensor,
  preprocessingFromMetadata,
  preprocessingFromShape,
  readImageFolder,
} from './data/images.ts';
export { type NpyArray, npySamples, parseNpy } from './data/npy.ts';
export { type ReadSamplesOptions, readSamples } from './data/read.ts';
export { parseCsvRows, parseJsonRows } from './data/rows.ts';
export { type Sample, type SampleSet, splitSamples, syntheticSamples } from './data/samples.ts';
export {
  type CompileResult,
  type CompilerLog,
  compileForEdgeTpu,
  findEdgeTpuCompiler,
  parseCompilerLog,
} from './edgetpu/compiler.ts';
export type { EdgeTpuExecutable, EdgeTpuLayer, EdgeTpuPackage } from './edgetpu/darwinn.ts';
export { EDGETPU_CACHE_BYTES, type EdgeTpuInspection, inspectEdgeTpu } from './edgetpu/inspect.ts';
export {
  DEFAULT_EDGETPU_RUNTIME,
  describeLint,
  type EdgeTpuLint,
  type EdgeTpuOpLint,
  lintEdgeTpu,
} from './edgetpu/lint.ts';
// Registers the `edgetpu` conversion target (convert --target edgetpu, and part of --target all).
export { buildEdgeTpuTarget } from './edgetpu/target.ts';
export { ConverterError } from './errors.ts';
export {
  buildModel,
  type InitializerSpec,
  type ModelSpec,
  mlpModel,
  type NodeSpec,
  seededRandom,
} from './onnx/builder.ts';
export { buildCnnClassifier, CNN_CLASSES, CNN_SIZE, cnnSamples } from './onnx/cnn.ts';
export { hasExternalData, inlineExternalData, loadOnnxFile } from './onnx/external.ts';
export { parseOnnx, serializeOnnx } from './onnx/io.ts';
export { cloneModel, normalizeForQuantization } from './onnx/normalize.ts';
export { probeTypes, type ValueType } from './onnx/probe.ts';
export { openSession, type RunningSession, runOnnx, sampleInputs } from './onnx/runtime.ts';
export { inspectOnnx, type OnnxSummary, summarizeModel } from './onnx/summary.ts';
export {
  type BundleOptions,
  type PackageOnnxOptions,
  packageOnnx,
  packConversion,
  REFERENCE_PROFILE_FILE,
  SMOKE_TEST_FILE,
} from './package/onnx-bundle.ts';
export {
  EDGETPU_FILE,
  type PackageTfliteOptions,
  packageTflite,
  TFLITE_FILE,
} from './package/tflite-bundle.ts';
export { convertToFp16, FP16_BLOCKED_OPS } from './passes/fp16.ts';
export { type CalibrationMethod, calibrate, exposeTensors, type Ranges } from './quant/calibrate.ts';
export { computeScaleZp, type QuantParams, qRange, quantizeWeight, roundHalfEven } from './quant/params.ts';
export { inspectKernels, type KernelReport } from './verify/kernels.ts';
export { OutputComparison, type OutputMetrics } from './verify/metrics.ts';
export { openWasmSession } from './verify/wasm.ts';
