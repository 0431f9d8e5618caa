/**
 * Walk the plan until one candidate opens and passes its probe: fetch (verified, cached), open a
 * session, run the probe (the bundle's smoke test, else zeros), compare with the expected outputs.
 * A failure at session creation, at the first run or in the comparison moves on to the next
 * candidate and is recorded; a failed hash or fetch stops everything (that is not the engine's fault).
 */
import {
  type ArtifactEntry,
  compareTensors,
  decodeTensor,
  type EncodedTensor,
  type SmokeTestFile,
  type TensorSpec,
} from '@edgefleet/bundle';
import { type ArtifactCache, type FetchArtifact, getVerifiedArtifact } from './artifact-store.ts';
import { describeError, WebError } from './errors.ts';
import type { Candidate, Engine as EngineName } from './plan.ts';
import type { Engine, EngineSession } from './runtimes/engine.ts';
import { fromHalf, type Tensor } from './tensors.ts';

export type FailureStage = 'runtime' | 'session' | 'first-run' | 'smoke-test';

/** One candidate that did not make it, and why. */
export interface FallbackRecord {
  file: string;
  engine: EngineName;
  executionProvider: string;
  stage: FailureStage;
  error: { code: string; message: string };
}

export interface ActivationTimings {
  fetch_ms: number;
  session_ms: number;
  probe_ms: number;
}

export interface Active {
  candidate: Candidate;
  session: EngineSession;
  cache: 'hit' | 'miss' | 'uncached';
  probe: ProbeKind | 'none';
  /** Agreement with the smoke test's expected outputs, when it was checked. */
  agreement?: { maxAbs: number; cosine: number };
  timings: ActivationTimings;
  /** Outputs of the probe run when it was the caller's own input. */
  outputs?: Record<string, Tensor>;
}

export type ProbeKind = 'smoke-test' | 'synthetic' | 'caller-input';

export interface Probe {
  /** Feeds for one artifact, and what they are (only smoke-test feeds have expected outputs). */
  inputs(artifact: ArtifactEntry): { kind: ProbeKind; feeds: Record<string, Tensor> } | undefined;
  expected?: SmokeTestFile['expected'];
}

export interface ActivationContext {
  engines: Partial<Record<EngineName, Engine>>;
  fetchArtifact: FetchArtifact;
  cache: ArtifactCache | undefined;
  specsOf(artifact: ArtifactEntry): { inputs: TensorSpec[]; outputs: TensorSpec[] };
  now(): number;
  fallbacks: FallbackRecord[];
}

/** The first candidate from `start` on that works; throws WEB_NO_RUNNABLE_ARTIFACT when none does. */
export async function activate(
  ctx: ActivationContext,
  candidates: readonly Candidate[],
  start: number,
  probe: Probe | undefined,
): Promise<Active & { index: number }> {
  const bytesBySha = new Map<string, { bytes: Uint8Array; cache: Active['cache'] }>();
  for (let index = start; index < candidates.length; index++) {
    const candidate = candidates[index] as Candidate;
    const { artifact } = candidate;
    const fail = (stage: FailureStage, error: unknown) =>
      ctx.fallbacks.push({
        file: artifact.file,
        engine: candidate.engine,
        executionProvider: candidate.executionProvider,
        stage,
        error: describeError(error),
      });
    const engine = ctx.engines[candidate.engine];
    if (!engine) {
      fail('runtime', new WebError('WEB_RUNTIME_UNAVAILABLE', `no ${candidate.engine} runtime was provided`));
      continue;
    }
    const t0 = ctx.now();
    let fetched = bytesBySha.get(artifact.sha256);
    if (!fetched) {
      const got = await getVerifiedArtifact(
        artifact.sha256,
        artifact.size_bytes,
        ctx.fetchArtifact,
        ctx.cache,
      );
      fetched = { bytes: got.bytes, cache: got.cache };
      bytesBySha.set(artifact.sha256, fetched);
    }
    const t1 = ctx.now();
    const specs = ctx.specsOf(artifact);
    let session: EngineSession;
    try {
      session = await engine.open({
        bytes: fetched.bytes,
        artifact,
        executionProvider: candidate.executionProvider,
        inputs: specs.inputs,
        outputs: specs.outputs,
      });
    } catch (error) {
      fail('session', error);
      continue;
    }
    const t2 = ctx.now();
    const fed = probe?.inputs(artifact);
    let outputs: Record<string, Tensor> | undefined;
    if (fed) {
      try {
        outputs = await session.run(fed.feeds);
      } catch (error) {
        fail('first-run', error);
        await session.dispose().catch(() => undefined);
        continue;
      }
    }
    const expected = fed?.kind === 'smoke-test' ? probe?.expected?.[artifact.file] : undefined;
    let agreement: Active['agreement'];
    if (outputs && expected) {
      const mismatch = compareWithExpected(outputs, expected);
      agreement = mismatch.agreement;
      if (mismatch.error) {
        fail('smoke-test', mismatch.error);
        await session.dispose().catch(() => undefined);
        continue;
      }
    }
    return {
      index,
      candidate,
      session,
      cache: fetched.cache,
      probe: fed ? fed.kind : 'none',
      ...(agreement ? { agreement } : {}),
      timings: { fetch_ms: t1 - t0, session_ms: t2 - t1, probe_ms: ctx.now() - t2 },
      ...(fed?.kind === 'caller-input' && outputs ? { outputs } : {}),
    };
  }
  const tried = ctx.fallbacks.map(
    (f) => `${f.file} on ${f.executionProvider} (${f.stage}: ${f.error.message})`,
  );
  throw new WebError(
    'WEB_NO_RUNNABLE_ARTIFACT',
    candidates.length === 0
      ? 'this model version has no artifact a browser can run'
      : `no artifact could run here; tried ${tried.join('; ')}`,
    { details: { fallbacks: ctx.fallbacks } },
  );
}

function compareWithExpected(
  outputs: Record<string, Tensor>,
  expected: SmokeTestFile['expected'][string],
): { error?: WebError; agreement?: { maxAbs: number; cosine: number } } {
  let maxAbs = 0;
  let cosine = 1;
  const wanted = Object.entries(expected.outputs);
  const got = Object.values(outputs);
  for (const [i, [name, encoded]] of wanted.entries()) {
    // Names can differ between the converter's runtime and this one; same count means same order.
    const actual = outputs[name] ?? (wanted.length === got.length ? got[i] : undefined);
    if (!actual)
      return { error: new WebError('WEB_SMOKE_TEST_FAILED', `the smoke test expects output "${name}"`) };
    const want = decodeExpected(encoded);
    const a = compareTensors(want, actual.data as ArrayLike<number>, expected.tolerance);
    maxAbs = Math.max(maxAbs, a.maxAbs);
    cosine = Math.min(cosine, a.cosine);
    if (!a.ok)
      return {
        agreement: { maxAbs, cosine },
        error: new WebError(
          'WEB_SMOKE_TEST_FAILED',
          `output "${name}" differs from the smoke test: max abs ${a.maxAbs.toPrecision(3)} (allowed ${expected.tolerance.maxAbs}), cosine ${a.cosine.toFixed(6)}`,
        ),
      };
  }
  return { agreement: { maxAbs, cosine } };
}

function decodeExpected(t: EncodedTensor): ArrayLike<number> {
  const d = decodeTensor(t);
  if (d.dtype === 'float16') return Float32Array.from(d.data as Uint16Array, fromHalf);
  if (d.data instanceof BigInt64Array) return Array.from(d.data, Number);
  return d.data as ArrayLike<number>;
}
