/**
 * Which variables a model gets, from its I/O specs and one reference row: tabular elements, image
 * channels, whole-tensor summaries, and for a classifier the predicted class, its confidence and
 * (for few classes) each class probability. Outputs come first, so a variable cap drops inputs.
 */
import { DriftError } from '../errors.ts';
import type { VariableSource } from '../profile-schema.ts';
import { elementCount, readNumber, type TensorLike, type TensorSpecLike } from '../tensors.ts';

export interface BuildOptions {
  /** Equal-mass bins per numeric variable (default 10: PSI on deciles; halves the window payload vs 20). */
  bins?: number;
  /** 'auto' (default) calls an output a classifier when it holds probabilities or matches `labels`. */
  task?: 'auto' | 'classification' | 'regression';
  /** Whether the classifier output is logits; 'auto' decides from the reference values. */
  softmax?: boolean | 'auto';
  /** Tensors with at most this many elements per sample get one variable per element (default 32). */
  maxElementFeatures?: number;
  /** At most this many variables (default 64); inputs are dropped first. */
  maxVariables?: number;
  /** Classes beyond this many (by reference frequency) count as "other" (default 50). */
  maxCategories?: number;
  /** Per-class probability variables when the classifier has at most this many classes (default 4). */
  maxClassProbabilities?: number;
  /** Minimum window size M_min for tests (default 200). */
  minWindow?: number;
  /** Names for the elements of small tensors, e.g. CSV column names. */
  featureNames?: Record<string, readonly string[]>;
  /** Layout of image inputs when the shape does not say. */
  imageLayout?: 'NCHW' | 'NHWC';
}

export interface PlannedVariable {
  name: string;
  kind: 'numeric' | 'categorical';
  source: VariableSource;
}

export interface Plan {
  tensors: { tensor: 'input' | 'output'; name: string; elements: number }[];
  variables: PlannedVariable[];
  classifier?: { output: string; classes: number; softmax: boolean; labels?: string[] };
  image?: { input: string; layout: 'NCHW' | 'NHWC'; channels: number };
  notes: string[];
}

/** Elements per sample: the first dimension is a batch when it is symbolic, 1 or dynamic. */
function perSample(spec: TensorSpecLike, t: TensorLike): { elements: number; sampleShape: number[] } {
  const first = spec.shape[0];
  const batched = t.shape.length >= 2 && (typeof first === 'string' || first === 1 || (first as number) <= 0);
  const sampleShape = batched ? t.shape.slice(1) : [...t.shape];
  return { elements: elementCount(sampleShape), sampleShape };
}

function imageLayout(shape: number[], hint?: 'NCHW' | 'NHWC'): 'NCHW' | 'NHWC' | undefined {
  if (shape.length !== 3) return undefined;
  const chw = [1, 3, 4].includes(shape[0]!) && shape[1]! >= 8 && shape[2]! >= 8;
  const hwc = [1, 3, 4].includes(shape[2]!) && shape[0]! >= 8 && shape[1]! >= 8;
  if (chw && hwc) return hint ?? 'NCHW';
  return chw ? 'NCHW' : hwc ? 'NHWC' : undefined;
}

function looksLikeProbabilities(rows: TensorLike[], per: number): boolean {
  for (const t of rows.slice(0, 200)) {
    for (let s = 0; s + per <= t.data.length; s += per) {
      let sum = 0;
      for (let i = 0; i < per; i++) {
        const x = readNumber(t, s + i);
        if (!(x >= -1e-6 && x <= 1 + 1e-6)) return false;
        sum += x;
      }
      if (Math.abs(sum - 1) > 1e-3) return false;
    }
  }
  return true;
}

/** Plan the variables of a profile. */
export function planVariables(
  io: { inputs: readonly TensorSpecLike[]; outputs: readonly TensorSpecLike[]; labels?: readonly string[] },
  rows: readonly { inputs: Record<string, TensorLike>; outputs: Record<string, TensorLike> }[],
  o: BuildOptions,
): Plan {
  const first = rows[0];
  if (!first) throw new DriftError('DRIFT_REFERENCE_INVALID', 'no reference rows');
  const maxElements = o.maxElementFeatures ?? 32;
  const plan: Plan = { tensors: [], variables: [], notes: [] };
  const outputs: PlannedVariable[] = [];
  const inputs: PlannedVariable[] = [];
  const elementVars = (role: 'input' | 'output', name: string, n: number, into: PlannedVariable[]) => {
    const names = o.featureNames?.[name];
    for (let i = 0; i < n; i++)
      into.push({
        name: names?.[i] ?? (n === 1 ? name : `${name}[${i}]`),
        kind: 'numeric',
        source: { op: 'element', tensor: role, name, index: i },
      });
  };
  const summaryVars = (role: 'input' | 'output', name: string, into: PlannedVariable[]) => {
    for (const op of ['mean', 'std'] as const)
      into.push({ name: `${name}.${op}`, kind: 'numeric', source: { op, tensor: role, name } });
  };

  for (const spec of io.outputs) {
    const t = first.outputs[spec.name];
    if (!t || spec.dtype === 'string') {
      plan.notes.push(`output "${spec.name}" skipped: ${t ? 'string tensor' : 'not in the reference rows'}`);
      continue;
    }
    const { elements } = perSample(spec, t);
    plan.tensors.push({ tensor: 'output', name: spec.name, elements });
    const labelsFit = io.labels !== undefined && io.labels.length === elements;
    const column = rows.map((r) => r.outputs[spec.name]).filter((x): x is TensorLike => x !== undefined);
    const probabilities = looksLikeProbabilities(column, elements);
    const isClassifier =
      !plan.classifier &&
      elements >= 2 &&
      (o.task === 'classification' || (o.task !== 'regression' && (labelsFit || probabilities)));
    if (isClassifier) {
      const softmax = o.softmax === 'auto' || o.softmax === undefined ? !probabilities : o.softmax;
      plan.classifier = {
        output: spec.name,
        classes: elements,
        softmax,
        ...(labelsFit ? { labels: [...io.labels!] } : {}),
      };
      outputs.push({
        name: `${spec.name}.class`,
        kind: 'categorical',
        source: { op: 'argmax', tensor: 'output', name: spec.name },
      });
      outputs.push({
        name: `${spec.name}.confidence`,
        kind: 'numeric',
        source: { op: 'max-prob', tensor: 'output', name: spec.name, softmax },
      });
      if (elements <= (o.maxClassProbabilities ?? 4))
        for (let k = 0; k < elements; k++)
          outputs.push({
            name: `${spec.name}.p[${labelsFit ? io.labels![k] : k}]`,
            kind: 'numeric',
            source: { op: 'prob', tensor: 'output', name: spec.name, index: k, softmax },
          });
    } else if (elements <= maxElements) elementVars('output', spec.name, elements, outputs);
    else summaryVars('output', spec.name, outputs);
  }

  for (const spec of io.inputs) {
    const t = first.inputs[spec.name];
    if (!t || spec.dtype === 'string') {
      plan.notes.push(`input "${spec.name}" skipped: ${t ? 'string tensor' : 'not in the reference rows'}`);
      continue;
    }
    const { elements, sampleShape } = perSample(spec, t);
    plan.tensors.push({ tensor: 'input', name: spec.name, elements });
    const layout = imageLayout(sampleShape, o.imageLayout);
    if (layout && elements > maxElements) {
      const channels = layout === 'NCHW' ? sampleShape[0]! : sampleShape[2]!;
      if (!plan.image) plan.image = { input: spec.name, layout, channels };
      for (let c = 0; c < channels; c++)
        for (const op of ['channel-mean', 'channel-std'] as const)
          inputs.push({
            name: `${spec.name}.c${c}.${op === 'channel-mean' ? 'mean' : 'std'}`,
            kind: 'numeric',
            source: { op, tensor: 'input', name: spec.name, layout, channels, channel: c },
          });
    } else if (elements <= maxElements) elementVars('input', spec.name, elements, inputs);
    else summaryVars('input', spec.name, inputs);
  }

  const max = o.maxVariables ?? 64;
  plan.variables = [...outputs, ...inputs].slice(0, max);
  if (outputs.length + inputs.length > max)
    plan.notes.push(`${outputs.length + inputs.length - max} input variables left out (maxVariables ${max})`);
  if (plan.variables.length === 0)
    throw new DriftError('DRIFT_REFERENCE_INVALID', 'the model has no input or output drift can follow');
  return plan;
}
