/**
 * `edgefleet keys` and `edgefleet convert` as users run them (the built CLI bundle): key files with
 * 0600, a signed bundle with a readable table or --json, exit 1 when an artifact is rejected, and
 * one-line errors for missing keys, bad models and unsupported targets.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { publicKeyOf, signingKeyFile, unpackBundle } from '@edgefleet/bundle';
import { OperatorSetIdProtoSchema } from 'onnx-buf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../test/support/processes.ts';
import { buildModel, mlpModel, parseOnnx, seededRandom, serializeOnnx } from '../src/index.ts';

const dir = await mkdtemp(join(tmpdir(), 'ef-cli-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const key = join(dir, 'keys', 'signing-key.json');
const env = { HOME: dir, EDGEFLEET_SIGNING_KEY: '' };

beforeAll(async () => {
  await writeFile(join(dir, 'mlp.onnx'), mlpModel({ inputs: 16, hidden: [32], outputs: 5, batch: 'N' }));
  const rand = seededRandom(8);
  const rows = Array.from({ length: 120 }, () =>
    Array.from({ length: 16 }, () => (rand() * 2 - 1).toFixed(4)).join(','),
  );
  await writeFile(join(dir, 'rows.csv'), rows.join('\n'));
  await writeFile(
    join(dir, 'conv.onnx'),
    buildModel({
      inputs: [{ name: 'x', shape: [1, 2, 8, 8] }],
      outputs: [{ name: 'y', shape: [1, 2, 6, 6] }],
      nodes: [{ op: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { kernel_shape: [3, 3] } }],
      initializers: [
        { name: 'w', dims: [2, 2, 3, 3], data: Float32Array.from({ length: 36 }, (_, i) => Math.sin(i)) },
      ],
    }),
  );
  const ml = parseOnnx(
    buildModel({
      inputs: [{ name: 'x', shape: [1, 2] }],
      outputs: [{ name: 'y', shape: [1, 2] }],
      nodes: [
        { op: 'Normalizer', domain: 'ai.onnx.ml', inputs: ['x'], outputs: ['y'], attrs: { norm: 'L2' } },
      ],
    }),
  );
  ml.opsetImport.push(create(OperatorSetIdProtoSchema, { domain: 'ai.onnx.ml', version: 1n }));
  await writeFile(join(dir, 'ml.onnx'), serializeOnnx(ml));
  await writeFile(join(dir, 'garbage.onnx'), 'this is not a model');
});

describe('edgefleet keys', () => {
  it('creates a 0600 key file, refuses to overwrite it, and shows its public half', async () => {
    const created = await runCli(['keys', 'create', '--out', key], env);
    expect(created.code, created.stderr).toBe(0);
    expect((await stat(key)).mode & 0o777).toBe(0o600);
    const file = signingKeyFile.parse(JSON.parse(await readFile(key, 'utf8')));
    expect(created.stdout).toContain(file.publicKey);
    const again = await runCli(['keys', 'create', '--out', key], env);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists; pass --force/);
    const shown = await runCli(['keys', 'show', '--key', key, '--json'], env);
    expect(JSON.parse(shown.stdout)).toEqual({ keyId: file.keyId, publicKey: file.publicKey });
  });

  it('defaults to ~/.edgefleet/signing-key.json', async () => {
    const created = await runCli(['keys', 'create'], env);
    expect(created.code, created.stderr).toBe(0);
    expect((await stat(join(dir, '.edgefleet', 'signing-key.json'))).mode & 0o777).toBe(0o600);
  });
});

describe('edgefleet convert', () => {
  it('writes a signed bundle and prints the table of artifacts', async () => {
    const out = join(dir, 'mlp.efb');
    const r = await runCli(
      [
        'convert',
        join(dir, 'mlp.onnx'),
        '--target',
        'all',
        '--calibration',
        join(dir, 'rows.csv'),
        '--key',
        key,
        '-o',
        out,
      ],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /ARTIFACT\s+TARGET\s+PRECISION\s+STATUS\s+SIZE\s+RATIO\s+REL-RMSE\s+COSINE\s+TOP-1/,
    );
    expect(r.stdout).toMatch(/cpu\/model-int8\.onnx\s+cpu\s+int8\s+packaged/);
    expect(r.stdout).toMatch(/webgpu\/model-fp16\.onnx\s+webgpu\s+fp16\s+packaged/);
    expect(r.stdout).not.toMatch(/NO CALIBRATION DATA/);
    expect(r.stderr).toMatch(/calibrating \(minmax, ranges\) \d+\/96/); // progress on stderr
    const file = signingKeyFile.parse(JSON.parse(await readFile(key, 'utf8')));
    const bundle = await unpackBundle(new Uint8Array(await readFile(out)), {
      trustedKeys: [publicKeyOf(file)],
    });
    expect(bundle.manifest).toMatchObject({ name: 'mlp', version: '1.0.0' });
    expect(bundle.manifest.artifacts.map((a) => a.file)).toEqual([
      'cpu/model-int8.onnx',
      'cpu/model.onnx',
      'webgpu/model-fp16.onnx',
      'edgetpu/model_int8.tflite', // `all` includes the Edge TPU target (its CPU twin here)
    ]);
  });

  it('--json prints the report; without data the synthetic fallback is called out', async () => {
    const r = await runCli(
      [
        'convert',
        join(dir, 'mlp.onnx'),
        '--target',
        'cpu',
        '--key',
        key,
        '-o',
        join(dir, 'm2.efb'),
        '--json',
        '--name',
        'm2',
        '--version',
        '2.1.0',
      ],
      env,
    );
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({
      name: 'm2',
      version: '2.1.0',
      report: { calibration: { synthetic: true } },
    });
    expect(json.report.warnings[0]).toMatch(/^NO CALIBRATION DATA/);
  });

  it('exits 1 when an artifact is rejected, saying why, and still writes what passed', async () => {
    const out = join(dir, 'conv.efb');
    const r = await runCli(
      [
        'convert',
        join(dir, 'conv.onnx'),
        '--target',
        'cpu',
        '--quantize',
        'dynamic',
        '--key',
        key,
        '-o',
        out,
      ],
      env,
    );
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(
      /cpu\/model-int8-dynamic\.onnx: REJECTED: conversion failed: int8 dynamic covers MatMul\/Gemm/,
    );
    expect((await stat(out)).size).toBeGreaterThan(0);
  });

  it('gives one-line errors: no key, not a model, an op the target cannot run, a bad flag', async () => {
    const noKey = await runCli(
      [
        'convert',
        join(dir, 'mlp.onnx'),
        '--target',
        'cpu',
        '--key',
        join(dir, 'nope.json'),
        '-o',
        join(dir, 'x.efb'),
      ],
      env,
    );
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/no signing key at .*nope\.json: create one with `edgefleet keys create`/);
    const garbage = await runCli(
      ['convert', join(dir, 'garbage.onnx'), '--target', 'cpu', '--key', key, '-o', join(dir, 'x.efb')],
      env,
    );
    expect(garbage.code).toBe(1);
    expect(garbage.stderr).toMatch(/not an ONNX model.*\[ONNX_INVALID\]/);
    const ml = await runCli(
      ['convert', join(dir, 'ml.onnx'), '--target', 'webgpu', '--key', key, '-o', join(dir, 'x.efb')],
      env,
    );
    expect(ml.code).toBe(1);
    expect(ml.stderr).toMatch(/webgpu cannot run ai\.onnx\.ml:Normalizer \(×1\).*\[TARGET_UNSUPPORTED\]/);
    const flag = await runCli(
      ['convert', join(dir, 'mlp.onnx'), '--target', 'gpu', '-o', join(dir, 'x.efb')],
      env,
    );
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--target must be one of cpu, webgpu, edgetpu, all/);
  });
});
