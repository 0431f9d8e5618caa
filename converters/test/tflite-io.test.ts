/**
 * TFLite read/write: every real model in ../shared/models/tflite survives a round trip through the
 * flatc-generated object API with identical interpreter outputs, and regenerating the code from the
 * official schema gives the committed files.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { PlainTensor, TensorSpec } from '@edgefleet/bundle';
import { describe, expect, it } from 'vitest';
import { projectRoot, requireService, sharedDir } from '../../test/support/services.ts';
import { seededRandom } from '../src/onnx/builder.ts';
import { TfliteError } from '../src/tflite/errors.ts';
import { openTflite } from '../src/tflite/interpreter.ts';
import { isTflite, readTflite, writeTflite } from '../src/tflite/read.ts';

const shared = await requireService('shared');
const flatc = await requireService('flatc');
const modelsDir = join(sharedDir(), 'models/tflite');
const models = shared.available ? readdirSync(modelsDir).filter((f) => f.endsWith('.tflite')) : [];

function randomFeeds(specs: TensorSpec[], seed: number): Record<string, PlainTensor> {
  const rand = seededRandom(seed);
  const feeds: Record<string, PlainTensor> = {};
  for (const s of specs) {
    const shape = s.shape as number[];
    const n = shape.reduce((a, b) => a * b, 1);
    const data =
      s.dtype === 'int8'
        ? Int8Array.from({ length: n }, () => Math.floor(rand() * 256) - 128)
        : s.dtype === 'uint8'
          ? Uint8Array.from({ length: n }, () => Math.floor(rand() * 256))
          : Float32Array.from({ length: n }, () => rand() * 4 - 2);
    feeds[s.name] = { dtype: s.dtype, shape, data };
  }
  return feeds;
}

/** Outputs on three seeded inputs, or the load error. */
function behaviour(bytes: Uint8Array): { error: string } | { outputs: Record<string, number[]>[] } {
  try {
    const session = openTflite(bytes);
    return {
      outputs: [1, 2, 3].map((seed) =>
        Object.fromEntries(
          Object.entries(session.run(randomFeeds(session.inputs, seed))).map(([k, t]) => [
            k,
            [...(t.data as Int8Array)],
          ]),
        ),
      ),
    };
  } catch (error) {
    expect(error).toBeInstanceOf(TfliteError);
    return { error: (error as Error).message };
  }
}

describe.skipIf(!shared.available)('TFLite round trip of the real models', () => {
  it('finds the shared models', () => {
    expect(models.length).toBeGreaterThanOrEqual(7);
  });

  for (const file of models) {
    it(`${file}: read → write → read keeps the model and its interpreter outputs`, () => {
      const original = new Uint8Array(readFileSync(join(modelsDir, file)));
      expect(isTflite(original)).toBe(true);
      const model = readTflite(original);
      const rewritten = writeTflite(model);
      expect(isTflite(rewritten)).toBe(true);
      // The same object tree after a second pass: nothing lost or invented by the writer.
      expect(readTflite(rewritten)).toEqual(model);
      const before = behaviour(original);
      const after = behaviour(rewritten);
      expect(after).toEqual(before);
      if (!file.includes('edgetpu') && !file.includes('invoking_error'))
        expect(before).toHaveProperty('outputs');
    });
  }

  it('constant buffers are written 16-byte aligned, activations use buffer 0 with no data', () => {
    const model = readTflite(new Uint8Array(readFileSync(join(modelsDir, 'hello_world_int8.tflite'))));
    const bytes = writeTflite(model);
    const again = readTflite(bytes);
    for (const b of again.buffers) if (b.data.length === 0) expect(b.data).toEqual(new Uint8Array());
    // Every constant's payload sits at a 16-byte aligned offset of the file.
    const payloads = again.buffers.filter((b) => b.data.length > 0).map((b) => b.data as Uint8Array);
    for (const p of payloads) {
      let found = -1;
      for (let at = 0; at + p.length <= bytes.length && found < 0; at += 16)
        if (bytes.subarray(at, at + p.length).every((v, i) => v === p[i])) found = at;
      expect(found, `payload of ${p.length} bytes not at an aligned offset`).toBeGreaterThanOrEqual(0);
    }
  });
});

describe.skipIf(!shared.available || !flatc.available)('generated TFLite code', () => {
  it('regenerating from the official schema with flatc gives the committed files', () => {
    const out = mkdtempSync(join(tmpdir(), 'ef-tflite-gen-'));
    try {
      execFileSync(
        join(projectRoot, 'converters/scripts/gen-tflite.sh'),
        [join(sharedDir(), 'models/tflite-schema.fbs'), out],
        {
          stdio: 'pipe',
        },
      );
      const committed = join(projectRoot, 'converters/src/tflite/generated');
      const list = (dir: string): string[] =>
        readdirSync(dir, { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile())
          .map((e) => relative(dir, join(e.parentPath, e.name)))
          .sort();
      expect(list(out)).toEqual(list(committed));
      for (const f of list(committed))
        expect(readFileSync(join(out, f), 'utf8'), f).toBe(readFileSync(join(committed, f), 'utf8'));
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
