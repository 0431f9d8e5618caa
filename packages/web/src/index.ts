/**
 * @edgefleet/web: run hub models in the browser (WebGPU, falling back to WASM; TFLite through
 * tfjs-tflite), verified end to end, and report prediction statistics as a fleet device.
 * Bundler users pass `runtimes` themselves; the prebuilt `/sdk/edgefleet.js` (browser.ts) loads
 * them from the hub.
 */
export type {
  ActivationTimings,
  FailureStage,
  FallbackRecord,
} from './activate.ts';
export {
  type ArtifactCache,
  browserArtifactCache,
  CACHE_NAME,
  type FetchArtifact,
  getVerifiedArtifact,
  memoryArtifactCache,
} from './artifact-store.ts';
export { type AssetOptions, urlRuntimes } from './assets.ts';
export {
  browserProfile,
  type Capabilities,
  detectCapabilities,
  detectWebGpu,
  type WebGpuInfo,
} from './capabilities.ts';
export {
  browserFacts,
  type DeviceCredentials,
  ensureEnrolled,
  forgetCredentials,
  type StorageLike,
} from './enrollment.ts';
export { describeError, WebError, type WebErrorCode } from './errors.ts';
export { type HubClient, hubClient } from './hub-client.ts';
export { type ImageSpec, type ImageTensor, imageToInput, pixelsToTensor, topK } from './image.ts';
export { type LoadOptions, load, type ReportOptions, reportedState } from './load.ts';
export {
  type BackendInfo,
  type LoadFromManifestOptions,
  loadFromManifest,
  type ProbeMode,
  type Runtimes,
} from './model.ts';
export {
  type Candidate,
  type DevicePreference,
  type Engine,
  type ExecutionProvider,
  gpuRequirements,
  type Plan,
  type PlanOptions,
  planCandidates,
} from './plan.ts';
export { type LoadOrt, type OrtModule, onnxEngine } from './runtimes/onnx.ts';
export { type LoadTflite, type TfliteClient, tfliteEngine } from './runtimes/tflite.ts';
export {
  EdgefleetModel,
  type Observer,
  type PredictionEvent,
  type ReportingStatus,
} from './session.ts';
export {
  basicAccumulator,
  createStatsReporter,
  type SeqStore,
  type StatsReporter,
  type StatsReporterOptions,
  type WindowAccumulator,
} from './stats.ts';
export {
  fromHalf,
  type ModelInput,
  normalizeInputs,
  type Tensor,
  type TensorData,
  type TensorInput,
  toHalf,
} from './tensors.ts';
export { SDK_VERSION } from './version.ts';
