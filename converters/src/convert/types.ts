/** Shapes shared by the conversion pipeline, its report and the bundle it packs. */
import type { ArtifactEntry, PlainTensor } from '@edgefleet/bundle';
import type { SampleSet } from '../data/samples.ts';
import type { CalibrationMethod } from '../quant/calibrate.ts';
import type { KernelReport } from '../verify/kernels.ts';
import type { OutputMetrics } from '../verify/metrics.ts';

export type Precision = 'fp32' | 'fp16' | 'int8' | 'int8-dynamic' | 'int8-weight-only';
export type QuantizeMode = 'none' | 'fp16' | 'static' | 'dynamic' | 'weight-only';

/** What a converted artifact must meet against the fp32 source (worst output, worst runtime). */
export interface Tolerance {
  maxRelRmse: number;
  minCosine: number;
  /** Applies to outputs shaped [N, C]. */
  minTop1: number;
}

/**
 * Defaults from research/converters.md §7.3: fp16 top-1 ≥ 99.5 %, int8 top-1 agreement ≥ 95 %,
 * dynamic int8 cosine ≥ 0.99; relative RMSE bounds leave room for x86 non-VNNI kernels (2–3×).
 */
export const DEFAULT_TOLERANCES: Record<Precision, Tolerance> = {
  fp32: { maxRelRmse: 1e-5, minCosine: 0.99999, minTop1: 1 },
  fp16: { maxRelRmse: 0.01, minCosine: 0.9999, minTop1: 0.995 },
  int8: { maxRelRmse: 0.06, minCosine: 0.995, minTop1: 0.95 },
  'int8-dynamic': { maxRelRmse: 0.06, minCosine: 0.99, minTop1: 0.95 },
  'int8-weight-only': { maxRelRmse: 0.06, minCosine: 0.995, minTop1: 0.95 },
};

export interface RuntimeResult {
  /** 'tflite': the TFLite interpreter (tfjs-tflite-node), for TFLite artifacts. */
  runtime: 'onnxruntime-node' | 'onnxruntime-web-wasm' | 'tflite';
  ok: boolean;
  error?: string;
  worst?: {
    maxAbsError: number;
    relRmse: number;
    cosine: number;
    top1Agreement: number | null;
    nonFinite: number;
  };
  outputs?: OutputMetrics[];
}

export interface ArtifactReport {
  file: string;
  target: string;
  /** 'uint8' for TFLite artifacts with uint8 quantization. */
  precision: Precision | 'uint8';
  /** packaged: met its tolerance; forced: missed it but --force; rejected: left out. */
  status: 'packaged' | 'forced' | 'rejected';
  reason?: string;
  sizeBytes: number;
  sizeRatio: number;
  /**
   * Share of the source's float weight bytes (initializers and Constant tensors, subgraphs included)
   * no longer stored as float: int8 artifacts only. A model whose weights hide where the pass cannot
   * reach shows it here instead of silently reporting a small gain.
   */
  weightCoverage?: number;
  /** Nodes whose weights (or whole computation) are quantized / reduced. */
  quantizedNodes: string[];
  keptFloat: Record<string, number>;
  kernels?: KernelReport;
  runtimes: RuntimeResult[];
  /** The runtimes the gate judged (a WebGPU artifact is judged in WASM, its browser fallback). */
  gatedOn: RuntimeResult['runtime'][];
  tolerance: Tolerance;
  notes: string[];
  warnings: string[];
  /** Edge TPU artifacts: the lint result and what became of compilation (converters/src/edgetpu). */
  edgetpu?: EdgeTpuReport;
}

export interface EdgeTpuReport {
  /** "9 of 9 ops on the Edge TPU". */
  summary: string;
  mappedOps: number;
  totalOps: number;
  firstCpuOp?: { index: number; op: string; issues: string[] };
  /** Lowest Edge TPU runtime the mapped ops need. */
  minRuntime: number;
  /** pending: no edgetpu_compiler here, the CPU twin is packaged; compiled; failed (twin packaged). */
  compilation: 'pending' | 'compiled' | 'failed';
  compilationMessage: string;
  compiler?: {
    path: string;
    version?: string;
    opsOnEdgeTpu?: number;
    opsOnCpu?: number;
    onChipMemoryUsed?: string;
    offChipMemoryUsed?: string;
  };
}

export interface BuiltArtifact {
  entry: Omit<ArtifactEntry, 'sha256' | 'size_bytes' | 'requires'> & { requires?: string[] };
  bytes: Uint8Array;
  report: ArtifactReport;
  /**
   * Expected smoke-test outputs for the bundle's smoke inputs, when onnxruntime cannot compute them
   * (TFLite artifacts); ONNX artifacts leave it out and are run in onnxruntime-node.
   */
  smoke?: (inputs: Record<string, PlainTensor>) => Promise<{
    outputs: Record<string, PlainTensor>;
    tolerance: { maxAbs: number; minCosine?: number };
  }>;
}

export interface ConvertOptions {
  targets: readonly string[];
  /** Per target default when absent: cpu → static, webgpu → fp16. */
  quantize?: QuantizeMode;
  calibration?: SampleSet;
  /** Held-out samples for the report; split from `calibration` when absent. */
  verification?: SampleSet;
  method?: CalibrationMethod;
  perChannel?: boolean;
  /** 7-bit weights for static/dynamic int8 on CPU; default true (x86 without VNNI saturates). */
  reduceRange?: boolean;
  tolerances?: Partial<Record<Precision, Partial<Tolerance>>>;
  force?: boolean;
  /** Type of the Edge TPU model's inputs and outputs; default int8. */
  tfliteIo?: 'int8' | 'uint8';
  /** Also verify in onnxruntime-web (WASM) in Node; default true. */
  verifyWasm?: boolean;
  /** Progress lines ("calibrating 40/100"). */
  onProgress?: (stage: string, done: number, total: number) => void;
}

export interface ConversionReport {
  tool: string;
  source: { sha256?: string; sizeBytes: number; opset?: number; parameterCount: number; producer?: string };
  calibration?: {
    origin: string;
    description: string;
    samples: number;
    method: CalibrationMethod;
    synthetic: boolean;
  };
  verification: { origin: string; description: string; samples: number; synthetic: boolean };
  targets: { target: string; ok: boolean; message?: string }[];
  artifacts: ArtifactReport[];
  warnings: string[];
  notes: string[];
}
