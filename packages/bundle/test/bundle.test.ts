import { describe, expect, it } from 'vitest';
import {
  BundleError,
  type BundleManifestInput,
  checkNotDowngrade,
  describeFile,
  generateSigningKey,
  packBundle,
  publicKeyOf,
  unpackBundle,
} from '../src/index.ts';

async function sampleBundle(overrides: Partial<BundleManifestInput> = {}) {
  const key = await generateSigningKey();
  const model = new Uint8Array([1, 2, 3, 4, 5]);
  const ref = await describeFile('cpu/model.onnx', model);
  const manifest: BundleManifestInput = {
    format: 'edgefleet-bundle',
    formatVersion: 1,
    name: 'tiny',
    version: '1.0.0',
    createdAt: '2026-01-01T00:00:00.000Z',
    source: { format: 'onnx', sha256: ref.sha256, size_bytes: ref.size_bytes },
    inputs: [{ name: 'x', shape: [1, 4], dtype: 'float32' }],
    outputs: [{ name: 'y', shape: [1, 2], dtype: 'float32' }],
    artifacts: [{ ...ref, target: 'cpu', runtime: 'onnxruntime', precision: 'fp32' }],
    ...overrides,
  };
  const packed = await packBundle(manifest, new Map([['cpu/model.onnx', model]]), key);
  return { key, packed };
}

async function expectCode(promise: Promise<unknown>, code: string) {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BundleError);
  expect((error as BundleError).code).toBe(code);
}

describe('bundle', () => {
  it('round-trips a signed bundle and names the signing key', async () => {
    const { key, packed } = await sampleBundle();
    const out = await unpackBundle(packed.bytes, { trustedKeys: [publicKeyOf(key)] });
    expect(out.signedBy).toBe(key.keyId);
    expect(out.manifest.name).toBe('tiny');
    expect([...(out.files.get('cpu/model.onnx') ?? [])]).toEqual([1, 2, 3, 4, 5]);
  });

  it('produces the same bytes for the same inputs', async () => {
    const { key, packed } = await sampleBundle();
    const again = await packBundle(
      packed.manifest,
      new Map([['cpu/model.onnx', new Uint8Array([1, 2, 3, 4, 5])]]),
      key,
    );
    expect(Buffer.from(again.bytes).equals(Buffer.from(packed.bytes))).toBe(true);
  });

  it('refuses a bundle signed by a key nobody trusts', async () => {
    const { packed } = await sampleBundle();
    const stranger = await generateSigningKey();
    await expectCode(
      unpackBundle(packed.bytes, { trustedKeys: [publicKeyOf(stranger)] }),
      'BUNDLE_UNTRUSTED_KEY',
    );
  });

  it('refuses a tampered manifest', async () => {
    const { key, packed } = await sampleBundle();
    const text = Buffer.from(packed.bytes).toString('latin1').replace('"tiny"', '"tinx"');
    await expectCode(
      unpackBundle(Buffer.from(text, 'latin1'), { trustedKeys: [publicKeyOf(key)] }),
      'BUNDLE_SIGNATURE_INVALID',
    );
  });

  it('refuses an artifact whose bytes differ from the manifest', async () => {
    const { key, packed } = await sampleBundle();
    const bytes = Buffer.from(packed.bytes);
    const at = bytes.indexOf(Buffer.from([1, 2, 3, 4, 5]));
    bytes[at] = 9;
    await expectCode(unpackBundle(bytes, { trustedKeys: [publicKeyOf(key)] }), 'BUNDLE_HASH_MISMATCH');
  });

  it('refuses truncated and non-tar input with a typed error', async () => {
    const { packed } = await sampleBundle();
    await expectCode(unpackBundle(packed.bytes.slice(0, 700)), 'BUNDLE_MALFORMED');
    await expectCode(unpackBundle(new Uint8Array(1024).fill(65)), 'BUNDLE_MALFORMED');
  });

  it('refuses an expired bundle', async () => {
    const { packed } = await sampleBundle({ expiresAt: '2026-02-01T00:00:00.000Z' });
    await expectCode(unpackBundle(packed.bytes, { now: new Date('2026-03-01T00:00:00Z') }), 'BUNDLE_EXPIRED');
  });

  it('refuses a downgrade unless it is a rollback to a version the device ran', () => {
    expect(() => checkNotDowngrade('1.2.0', '1.1.9')).toThrow(BundleError);
    expect(() => checkNotDowngrade('1.2.0', '1.1.9', { rollbackTo: ['1.1.9'] })).not.toThrow();
    expect(() => checkNotDowngrade('1.2.0', '1.10.0')).not.toThrow();
  });
});

describe('smoke-test comparison', () => {
  it('agrees on NaN where NaN is expected and refuses NaN anywhere else', async () => {
    const { compareTensors } = await import('../src/index.ts');
    expect(compareTensors([1, Number.NaN, 3], [1, Number.NaN, 3], { maxAbs: 1e-6 }).ok).toBe(true);
    expect(compareTensors([1, 2, 3], [1, Number.NaN, 3], { maxAbs: 1e-6 }).ok).toBe(false);
    expect(
      compareTensors([1, Number.POSITIVE_INFINITY], [1, Number.NEGATIVE_INFINITY], { maxAbs: 1 }).ok,
    ).toBe(false);
    expect(compareTensors([1, 2], [1, 2.5], { maxAbs: 0.1 }).ok).toBe(false);
  });
});
