/** Property-based fuzzing of the bundle reader: hostile tars never crash, hang or escape their files. */
import fc from 'fast-check';
import { createTar } from 'nanotar';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BundleError,
  describeFile,
  generateSigningKey,
  packBundle,
  publicKeyOf,
  type SigningKeyFile,
  unpackBundle,
} from '../src/index.ts';

let key: SigningKeyFile;
let valid: Uint8Array;

beforeAll(async () => {
  key = await generateSigningKey();
  const artifact = new Uint8Array(700).map((_, i) => i % 251);
  const ref = await describeFile('cpu/model.onnx', artifact);
  valid = (
    await packBundle(
      {
        format: 'edgefleet-bundle',
        formatVersion: 1,
        name: 'fuzz',
        version: '1.0.0',
        createdAt: '2026-01-01T00:00:00.000Z',
        source: { format: 'onnx', sha256: ref.sha256, size_bytes: ref.size_bytes },
        inputs: [{ name: 'x', shape: [1], dtype: 'float32' }],
        outputs: [{ name: 'y', shape: [1], dtype: 'float32' }],
        artifacts: [{ ...ref, target: 'cpu', runtime: 'onnxruntime', precision: 'fp32' }],
      },
      new Map([['cpu/model.onnx', artifact]]),
      key,
    )
  ).bytes;
});

async function expectTypedOrValid(bytes: Uint8Array) {
  try {
    await unpackBundle(bytes, { trustedKeys: [publicKeyOf(key)], maxBytes: 1 << 20 });
  } catch (error) {
    expect(error).toBeInstanceOf(BundleError);
  }
}

describe('bundle reader under fuzzing', () => {
  it('random bytes → BundleError', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), expectTypedOrValid), {
      numRuns: 2000,
    });
  });

  it('a valid bundle with bytes flipped or cut → BundleError, or still valid and verified', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.option(fc.nat()),
        async (flips, cut) => {
          const bytes = valid.slice(0, cut === null ? valid.byteLength : cut % (valid.byteLength + 1));
          for (const [at, value] of flips) if (bytes.byteLength > 0) bytes[at % bytes.byteLength] = value;
          await expectTypedOrValid(bytes);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses entries that would escape the bundle or are not plain files', async () => {
    const names = fc.constantFrom(
      '../evil',
      '/etc/passwd',
      'a/../../b',
      'a\\b',
      '.hidden',
      'ok/../../x',
      'dir/',
    );
    await fc.assert(
      fc.asyncProperty(names, fc.constantFrom<'0' | '2' | '5'>('0', '2', '5'), async (name, type) => {
        const tar = createTar([
          { name: 'manifest.json', data: '{}' },
          { name, data: 'x', attrs: { mode: type === '5' ? '755' : '644' } },
        ]);
        const error = await unpackBundle(tar).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(BundleError);
      }),
      { numRuns: 200 },
    );
  });
});
