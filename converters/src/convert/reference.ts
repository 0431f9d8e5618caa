/**
 * `--reference` plumbing: the user's reference data (training-like inputs) is run through the fp32
 * model, and handed to @edgefleet/drift's `buildReferenceProfile` when that export exists; the
 * profile then ships as manifest.referenceProfile. Until it exists the report says so.
 */
import type { PlainTensor, TensorSpec } from '@edgefleet/bundle';
import type { SampleSet } from '../data/samples.ts';
import { openSession } from '../onnx/runtime.ts';

export interface ReferenceResult {
  /** JSON bytes of the profile, when one was built. */
  profile?: Uint8Array;
  report: { samples: number; description: string; status: 'built' | 'pending' | 'failed'; reason?: string };
}

/** What buildReferenceProfile is given: model I/O specs and, per sample, its inputs and fp32 outputs. */
export interface ReferenceRows {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  rows: { inputs: Record<string, PlainTensor>; outputs: Record<string, PlainTensor> }[];
  labels?: string[];
}

/** Build the drift reference profile from reference samples, if @edgefleet/drift can. */
export async function buildReference(
  source: Uint8Array,
  set: SampleSet,
  io: { inputs: TensorSpec[]; outputs: TensorSpec[]; labels?: string[] },
): Promise<ReferenceResult> {
  const base = { samples: set.samples.length, description: set.description };
  const drift = (await import('@edgefleet/drift')) as Record<string, unknown>;
  const build = drift.buildReferenceProfile;
  if (typeof build !== 'function')
    return {
      report: {
        ...base,
        status: 'pending',
        reason: '@edgefleet/drift does not export buildReferenceProfile yet',
      },
    };
  const session = await openSession(source);
  const rows: ReferenceRows['rows'] = [];
  try {
    for (const s of set.samples) rows.push({ inputs: s, outputs: await session.run(s) });
  } finally {
    await session.release();
  }
  try {
    const profile = await (build as (r: ReferenceRows) => unknown)({ ...io, rows });
    return {
      profile: new TextEncoder().encode(JSON.stringify(profile)),
      report: { ...base, status: 'built' },
    };
  } catch (error) {
    return { report: { ...base, status: 'failed', reason: (error as Error).message } };
  }
}
