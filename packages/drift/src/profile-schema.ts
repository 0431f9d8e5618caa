/**
 * The reference profile: what a model version's inputs and outputs looked like on the user's
 * reference data, as fixed bins the devices count into. It ships in the bundle
 * (manifest.referenceProfile) and is compact JSON; `hash` ties device windows to these exact bins.
 */
import { z } from 'zod';

export const PROFILE_FORMAT = 'edgefleet-drift-profile';

const finite = z.number().finite();
const count = z.number().int().nonnegative();
const tensorRole = z.enum(['input', 'output']);
const tensorName = z.string().min(1).max(256);

/** How a variable's value is read from one sample of a model's tensors. */
export const variableSource = z.discriminatedUnion('op', [
  /** One element of a small (tabular) tensor. */
  z.object({ op: z.literal('element'), tensor: tensorRole, name: tensorName, index: count }).strict(),
  /** Mean or standard deviation of one channel of an image tensor (brightness / contrast per channel). */
  z
    .object({
      op: z.enum(['channel-mean', 'channel-std']),
      tensor: tensorRole,
      name: tensorName,
      layout: z.enum(['NCHW', 'NHWC']),
      channels: z.number().int().min(1).max(16),
      channel: count,
    })
    .strict(),
  /** Mean or standard deviation of a whole (large, non-image) tensor sample. */
  z.object({ op: z.enum(['mean', 'std']), tensor: tensorRole, name: tensorName }).strict(),
  /** A classifier's predicted class. */
  z.object({ op: z.literal('argmax'), tensor: tensorRole, name: tensorName }).strict(),
  /** A classifier's top-1 probability (softmax applied first when the output is logits). */
  z
    .object({ op: z.literal('max-prob'), tensor: tensorRole, name: tensorName, softmax: z.boolean() })
    .strict(),
  /** The probability of one class. */
  z
    .object({
      op: z.literal('prob'),
      tensor: tensorRole,
      name: tensorName,
      index: count,
      softmax: z.boolean(),
    })
    .strict(),
]);
export type VariableSource = z.infer<typeof variableSource>;

const quantiles = z.tuple([finite, finite, finite, finite, finite]);

export const numericVariable = z
  .object({
    name: z.string().min(1).max(300),
    kind: z.literal('numeric'),
    source: variableSource,
    /** Interior bin edges, strictly increasing, strictly inside (min, max]. */
    edges: z.array(finite).max(200),
    /** Reference counts: [invalid, below-min, bins…, above-max] (length edges + 4). */
    counts: z.array(count),
    /** Over the reference's finite values: count, mean, population std, min, max, p5/p25/p50/p75/p95. */
    n: count,
    mean: finite,
    std: finite,
    min: finite,
    max: finite,
    quantiles,
  })
  .strict()
  .refine((v) => v.counts.length === v.edges.length + 4, { message: 'counts must have edges + 4 entries' })
  .refine((v) => v.edges.every((e, i) => e > (i === 0 ? v.min : v.edges[i - 1]!) && e <= v.max), {
    message: 'edges must increase strictly within (min, max]',
  });
export type NumericVariable = z.infer<typeof numericVariable>;

export const categoricalVariable = z
  .object({
    name: z.string().min(1).max(300),
    kind: z.literal('categorical'),
    source: variableSource,
    /** Category labels; values outside them count as "other". */
    categories: z.array(z.string().max(256)).min(1).max(1000),
    /** Category index → label position, when the categories are a subset (top-K) of the classes. */
    classIndex: z.array(count).optional(),
    /** Reference counts: [invalid, categories…, other] (length categories + 2). */
    counts: z.array(count),
  })
  .strict()
  .refine((v) => v.counts.length === v.categories.length + 2, {
    message: 'counts must have categories + 2 entries',
  })
  .refine((v) => !v.classIndex || v.classIndex.length === v.categories.length, {
    message: 'classIndex must match categories',
  });
export type CategoricalVariable = z.infer<typeof categoricalVariable>;

export const profileVariable = z.union([numericVariable, categoricalVariable]);
export type ProfileVariable = z.infer<typeof profileVariable>;

export const referenceProfile = z
  .object({
    format: z.literal(PROFILE_FORMAT),
    formatVersion: z.literal(1),
    /** FNV-1a 64 of the canonical JSON of everything else (see hash.ts). */
    hash: z.string().regex(/^[0-9a-f]{16}$/),
    /** Reference samples the profile was built from (N). */
    rows: count,
    task: z.enum(['classification', 'regression', 'other']),
    /** Per-sample element count of every tensor the variables read (batch detection on the device). */
    tensors: z
      .array(
        z.object({ tensor: tensorRole, name: tensorName, elements: z.number().int().positive() }).strict(),
      )
      .max(128),
    /** Windows smaller than this are merged with neighbours before any test (M_min). */
    minWindow: z.number().int().min(1).max(1_000_000),
    variables: z.array(profileVariable).min(1).max(256),
    classifier: z
      .object({
        output: tensorName,
        classes: z.number().int().min(2),
        labels: z.array(z.string().max(256)).optional(),
        softmax: z.boolean(),
        /** Top-1 confidence on the reference: mean and p5/p25/p50/p75/p95. */
        confidence: z.object({ mean: finite, quantiles }).strict(),
        /** Accuracy on the reference, when it came with targets. */
        accuracy: z.number().min(0).max(1).optional(),
        /** Isotonic map top-1 confidence → P(correct), fitted on the reference targets (CBPE). */
        calibrator: z
          .object({ x: z.array(finite).max(256), y: z.array(z.number().min(0).max(1)).max(256) })
          .optional(),
      })
      .strict()
      .optional(),
    image: z
      .object({
        input: tensorName,
        layout: z.enum(['NCHW', 'NHWC']),
        channels: z.array(z.object({ mean: finite, std: finite, min: finite, max: finite }).strict()).max(16),
      })
      .strict()
      .optional(),
    /** What the builder left out and why (e.g. a variable with no finite reference value). */
    notes: z.array(z.string().max(500)).max(100).optional(),
  })
  .strict();
export type ReferenceProfile = z.infer<typeof referenceProfile>;
