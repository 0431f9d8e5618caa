/** Hostile, truncated and corrupt .tflite bytes give a TfliteError, never a crash, a hang or a bogus model. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { Builder } from 'flatbuffers';
import { describe, expect, it } from 'vitest';
import { requireService, sharedDir } from '../../test/support/services.ts';
import { TfliteError } from '../src/tflite/errors.ts';
import { Model, SubGraph, Tensor } from '../src/tflite/generated/schema_generated.ts';
import { readTflite, writeTflite } from '../src/tflite/read.ts';

const shared = await requireService('shared');
const seeds = shared.available
  ? ['hello_world_int8.tflite', 'keras_lstm_mnist_ptq.tflite', 'split_concat_edgetpu.tflite'].map(
      (f) => new Uint8Array(readFileSync(join(sharedDir(), 'models/tflite', f))),
    )
  : [];

const outcomes = new Map<string, number>();
function typedOrValid(bytes: Uint8Array): void {
  let outcome = 'valid';
  try {
    const model = readTflite(bytes);
    // Whatever reads as valid can be written back.
    expect(readTflite(writeTflite(model)).subgraphs.length).toBe(model.subgraphs.length);
  } catch (error) {
    expect(error, String((error as Error).stack)).toBeInstanceOf(TfliteError);
    outcome = (error as TfliteError).code;
  }
  outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
}

describe('TFLite reader under fuzzing', () => {
  it('random bytes, with and without the TFL3 identifier → TfliteError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), fc.boolean(), (bytes, tagged) => {
        if (tagged && bytes.length >= 8) bytes.set([0x54, 0x46, 0x4c, 0x33], 4);
        typedOrValid(bytes);
      }),
      { numRuns: 3000 },
    );
  });

  it.skipIf(!shared.available)(
    'real models with bytes flipped, inserted or cut → TfliteError or a readable model',
    () => {
      fc.assert(
        fc.property(
          fc.nat({ max: seeds.length - 1 }),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
          fc.option(fc.nat()),
          fc.option(fc.uint8Array({ minLength: 1, maxLength: 16 })),
          (which, flips, cut, insert) => {
            const seed = seeds[which] as Uint8Array;
            let bytes = seed.slice(0, cut === null ? seed.byteLength : cut % (seed.byteLength + 1));
            for (const [at, value] of flips) if (bytes.byteLength > 0) bytes[at % bytes.byteLength] = value;
            if (insert && bytes.byteLength > 0) {
              const at = (flips[0]?.[0] ?? 0) % bytes.byteLength;
              bytes = Uint8Array.from([...bytes.slice(0, at), ...insert, ...bytes.slice(at)]);
            }
            typedOrValid(bytes);
          },
        ),
        { numRuns: 2000 },
      );
      // The generator reaches both sides: some mutations stay readable, most are refused.
      expect(outcomes.get('valid')).toBeGreaterThan(0);
      expect(outcomes.get('TFLITE_INVALID')).toBeGreaterThan(0);
    },
  );

  it('a file whose tables share sub-tables a billion times over is refused, not expanded', () => {
    const b = new Builder(1024);
    const name = b.createString('t');
    Tensor.startShapeVector(b, 0);
    const shape = b.endVector();
    Tensor.startTensor(b);
    Tensor.addName(b, name);
    Tensor.addShape(b, shape);
    const tensor = Tensor.endTensor(b);
    const tensors = SubGraph.createTensorsVector(b, new Array(20_000).fill(tensor));
    SubGraph.startSubGraph(b);
    SubGraph.addTensors(b, tensors);
    const subgraph = SubGraph.endSubGraph(b);
    const subgraphs = Model.createSubgraphsVector(b, new Array(50_000).fill(subgraph));
    Model.startModel(b);
    Model.addVersion(b, 3);
    Model.addSubgraphs(b, subgraphs);
    Model.finishModelBuffer(b, Model.endModel(b));
    const bytes = b.asUint8Array();
    expect(bytes.byteLength).toBeLessThan(400_000); // a small file …
    expect(() => readTflite(bytes)).toThrow(/too many times/); // … describing 10⁹ tensors
  });

  it.skipIf(!shared.available)('a shape claiming gigabytes is refused as unsupported', () => {
    const model = readTflite(seeds[0] ?? new Uint8Array());
    const input = model.subgraphs[0]?.tensors[model.subgraphs[0].inputs[0] ?? 0];
    if (input) input.shape = [1, 1 << 30];
    expect(() => readTflite(writeTflite(model))).toThrow(
      expect.objectContaining({ code: 'TFLITE_UNSUPPORTED' }),
    );
  });
});
