/** The on-device smoke test: run the bundle's sample inputs and compare with the expected outputs. */
import { compareTensors, decodeTensor, type PlainTensor, type SmokeTestFile } from '@edgefleet/bundle';
import { AgentError } from './errors.ts';
import type { ModelSession } from './runtime/backend.ts';

export async function runSmokeTest(
  session: ModelSession,
  smoke: SmokeTestFile,
  artifactFile: string,
): Promise<{ maxAbs: number; cosine: number }> {
  const expected = smoke.expected[artifactFile];
  if (!expected) return { maxAbs: 0, cosine: 1 }; // the bundle has no expectations for this artifact
  const inputs: Record<string, PlainTensor> = {};
  for (const [name, t] of Object.entries(smoke.inputs)) inputs[name] = decodeTensor(t);
  let outputs: Record<string, PlainTensor>;
  try {
    outputs = await session.run(inputs);
  } catch (cause) {
    throw new AgentError(
      'SMOKE_TEST_FAILED',
      `the model fails on its own sample input: ${(cause as Error).message}`,
      { cause },
    );
  }
  let worst = { maxAbs: 0, cosine: 1 };
  for (const [name, encoded] of Object.entries(expected.outputs)) {
    const actual = outputs[name];
    if (!actual) throw new AgentError('SMOKE_TEST_FAILED', `the model produced no output "${name}"`);
    const want = decodeTensor(encoded);
    const agreement = compareTensors(
      want.data as ArrayLike<number>,
      actual.data as ArrayLike<number>,
      expected.tolerance,
    );
    if (!agreement.ok) {
      throw new AgentError(
        'SMOKE_TEST_FAILED',
        `output ${name} differs from the expected sample output (max abs ${agreement.maxAbs.toExponential(2)} > ${expected.tolerance.maxAbs}, cosine ${agreement.cosine.toFixed(4)})`,
      );
    }
    worst = {
      maxAbs: Math.max(worst.maxAbs, agreement.maxAbs),
      cosine: Math.min(worst.cosine, agreement.cosine),
    };
  }
  return worst;
}
