/**
 * Verification of one artifact against the fp32 source on held-out samples, in onnxruntime-node
 * and onnxruntime-web (WASM), plus the tolerance gate.
 */
import type { PlainTensor } from '@edgefleet/bundle';
import type { Sample } from '../data/samples.ts';
import { openSession, type RunningSession } from '../onnx/runtime.ts';
import { OutputComparison, worstOf } from '../verify/metrics.ts';
import { openWasmSession } from '../verify/wasm.ts';
import type { RuntimeResult, Tolerance } from './types.ts';

/** Run the fp32 source on every sample (the reference outputs). */
export async function referenceOutputs(
  source: Uint8Array,
  samples: readonly Sample[],
): Promise<Record<string, PlainTensor>[]> {
  const session = await openSession(source);
  try {
    const out: Record<string, PlainTensor>[] = [];
    for (const s of samples) out.push(await session.run(s));
    return out;
  } finally {
    await session.release();
  }
}

async function compareIn(
  runtime: RuntimeResult['runtime'],
  open: () => Promise<RunningSession>,
  samples: readonly Sample[],
  reference: readonly Record<string, PlainTensor>[],
): Promise<RuntimeResult> {
  let session: RunningSession;
  try {
    session = await open();
  } catch (error) {
    return { runtime, ok: false, error: (error as Error).message };
  }
  try {
    const cmp = new OutputComparison();
    for (const [i, s] of samples.entries())
      cmp.add(reference[i] as Record<string, PlainTensor>, await session.run(s));
    const outputs = cmp.result();
    return { runtime, ok: true, worst: worstOf(outputs), outputs };
  } catch (error) {
    return { runtime, ok: false, error: (error as Error).message };
  } finally {
    await session.release();
  }
}

/** Compare the artifact with the reference in each runtime. */
export async function verifyInRuntimes(
  artifact: Uint8Array,
  samples: readonly Sample[],
  reference: readonly Record<string, PlainTensor>[],
  options: { wasm: boolean; wasmSamples?: number },
): Promise<RuntimeResult[]> {
  const results = [await compareIn('onnxruntime-node', () => openSession(artifact), samples, reference)];
  if (options.wasm) {
    // WASM is ~10× slower than ORT-node: a prefix of the samples is enough to catch disagreements.
    const n = Math.min(samples.length, options.wasmSamples ?? 50);
    results.push(
      await compareIn(
        'onnxruntime-web-wasm',
        () => openWasmSession(artifact),
        samples.slice(0, n),
        reference,
      ),
    );
  }
  return results;
}

/** Why a result misses its tolerance, or undefined when it meets it. */
export function toleranceMiss(result: RuntimeResult, tolerance: Tolerance): string | undefined {
  if (!result.ok || !result.worst)
    return `does not run in ${result.runtime}: ${result.error ?? 'unknown error'}`;
  const w = result.worst;
  const where = ` in ${result.runtime}`;
  if (w.nonFinite > 0) return `${w.nonFinite} NaN/Inf value(s) where fp32 is finite${where}`;
  if (w.relRmse > tolerance.maxRelRmse)
    return `relative RMSE ${w.relRmse.toPrecision(3)} > ${tolerance.maxRelRmse}${where}`;
  if (w.cosine < tolerance.minCosine) return `cosine ${w.cosine.toFixed(5)} < ${tolerance.minCosine}${where}`;
  if (w.top1Agreement !== null && w.top1Agreement < tolerance.minTop1)
    return `top-1 agreement ${(w.top1Agreement * 100).toFixed(1)} % < ${(tolerance.minTop1 * 100).toFixed(1)} %${where}`;
  return undefined;
}
