/**
 * The bundle manifest (`manifest.json` inside an `.efb`). The signature covers its exact bytes,
 * so readers keep those bytes and never re-serialise before verifying.
 */
import { schemas } from '@edgefleet/protocol';
import { z } from 'zod';

export const BUNDLE_FORMAT = 'edgefleet-bundle';
export const BUNDLE_FORMAT_VERSION = 1;

/** A file name inside a bundle: relative, no `..`, no absolute paths, no backslashes. */
export const bundlePath = z
  .string()
  .min(1)
  .max(100)
  .regex(
    /^[A-Za-z0-9_][A-Za-z0-9._-]*(?:\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/,
    'a relative path without ".." or "/" prefix',
  )
  .refine((p) => !p.split('/').includes('..'), 'must not contain ..');

export const dtype = z.enum([
  'float32',
  'float16',
  'int8',
  'uint8',
  'int16',
  'int32',
  'int64',
  'bool',
  'string',
]);
export type Dtype = z.infer<typeof dtype>;

export const tensorSpec = z.object({
  name: z.string().min(1).max(256),
  /** Dimensions; a string is a symbolic (dynamic) dimension such as "batch". */
  shape: z.array(z.union([z.number().int().nonnegative(), z.string().max(64)])).max(8),
  dtype,
  /** Quantization of an int8/uint8 tensor: real = scale · (q − zeroPoint). */
  quantization: z.object({ scale: z.number().positive(), zeroPoint: z.number().int() }).optional(),
});
export type TensorSpec = z.infer<typeof tensorSpec>;

export const artifactTargets = ['cpu', 'webgpu', 'wasm', 'edgetpu', 'tflite'] as const;
export type ArtifactTarget = (typeof artifactTargets)[number];

export const artifactEntry = z.object({
  file: bundlePath,
  target: z.enum(artifactTargets),
  /** Which engine runs it: onnxruntime (node or web) or tflite (with or without the Edge TPU delegate). */
  runtime: z.enum(['onnxruntime', 'tflite']),
  minRuntimeVersion: z.string().max(32).optional(),
  precision: z.enum(['fp32', 'fp16', 'int8', 'int8-dynamic', 'int8-weight-only', 'uint8', 'mixed']),
  sha256: schemas.sha256,
  size_bytes: z.number().int().nonnegative(),
  /** Features the device must have, e.g. "shader-f16" or "edgetpu". */
  requires: z.array(z.string().max(64)).max(16).default([]),
  /** The artifact to run instead when this one cannot (e.g. the CPU twin of an `_edgetpu.tflite`). */
  fallback: bundlePath.optional(),
  /** I/O of this artifact when it differs from the model's (NHWC int8 for TFLite, for example). */
  inputs: z.array(tensorSpec).optional(),
  outputs: z.array(tensorSpec).optional(),
  /** The verification report against the source model (see converters). */
  report: z.record(z.string(), z.unknown()).optional(),
});
export type ArtifactEntry = z.infer<typeof artifactEntry>;

export const imagePreprocessing = z.object({
  kind: z.literal('image'),
  width: z.number().int().positive().max(8192),
  height: z.number().int().positive().max(8192),
  layout: z.enum(['NCHW', 'NHWC']),
  channels: z.enum(['RGB', 'BGR', 'GRAY']),
  /** Applied as (pixel/255 − mean)/std per channel, unless `scale` says pixels stay 0..255. */
  mean: z.array(z.number()).max(4).default([0, 0, 0]),
  std: z.array(z.number()).max(4).default([1, 1, 1]),
  pixelRange: z.enum(['0-1', '0-255']).default('0-1'),
});
export type ImagePreprocessing = z.infer<typeof imagePreprocessing>;

export const fileRef = z.object({
  file: bundlePath,
  sha256: schemas.sha256,
  size_bytes: z.number().int().nonnegative(),
});
export type FileRef = z.infer<typeof fileRef>;

export const bundleManifest = z.object({
  format: z.literal(BUNDLE_FORMAT),
  formatVersion: z.literal(BUNDLE_FORMAT_VERSION),
  name: schemas.name,
  version: schemas.semver,
  createdAt: schemas.isoTime,
  /** A bundle past this time is refused by agents. */
  expiresAt: schemas.isoTime.optional(),
  description: z.string().max(2000).optional(),
  source: z.object({
    format: z.enum(['onnx', 'tflite']),
    sha256: schemas.sha256,
    size_bytes: z.number().int().nonnegative(),
    opset: z.number().int().optional(),
    producer: z.string().max(256).optional(),
  }),
  inputs: z.array(tensorSpec).min(1).max(64),
  outputs: z.array(tensorSpec).min(1).max(64),
  artifacts: z.array(artifactEntry).min(1).max(32),
  preprocessing: imagePreprocessing.optional(),
  postprocessing: z
    .object({
      kind: z.enum(['classification', 'regression', 'detection', 'none']),
      softmax: z.boolean().default(false),
    })
    .optional(),
  labels: z.array(z.string().max(256)).max(100_000).optional(),
  /** Drift reference profile built from the user's reference data (see @edgefleet/drift). */
  referenceProfile: fileRef.optional(),
  /** Sample inputs and, per artifact, the outputs expected from them: the on-device smoke test. */
  smokeTest: fileRef.optional(),
  conversion: z.record(z.string(), z.unknown()).optional(),
});
export type BundleManifest = z.infer<typeof bundleManifest>;
export type BundleManifestInput = z.input<typeof bundleManifest>;
