/**
 * ONNX reading and writing beyond the flat case: If subgraphs with Constant-node weights,
 * external data (inlined safely, hostile locations refused), and the opset upgrade checked against
 * the backend suite's own expected outputs.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import type { PlainTensor } from '@edgefleet/bundle';
import {
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  type ModelProto,
  NodeProtoSchema,
} from 'onnx-buf';
import { afterAll, describe, expect, it } from 'vitest';
import { requireService } from '../../test/support/services.ts';
import {
  buildModel,
  ConverterError,
  convertModel,
  inspectOnnx,
  loadOnnxFile,
  mlpModel,
  parseOnnx,
  runOnnx,
  sampleInputs,
  seededRandom,
  serializeOnnx,
} from '../src/index.ts';
import { runnableModel } from '../src/onnx/normalize.ts';
import { floatTensor } from '../src/onnx/tensor.ts';
import { backendDir, readBackendCase } from './support/onnx-files.ts';

const shared = await requireService('shared');
const temp = await mkdtemp(join(tmpdir(), 'ef-onnx-io-'));
afterAll(() => rm(temp, { recursive: true, force: true }));

const weights = (seed: number, n: number) => {
  const r = seededRandom(seed);
  return Float32Array.from({ length: n }, () => r() * 2 - 1);
};

/** x[1,64] → If(sum(x) > 0) then: x·W1 (W1 in a Constant node) else: x·W2 (subgraph initializer). */
function ifModel(): Uint8Array {
  const branch = (name: string, withConstant: boolean): ModelProto['graph'] =>
    parseOnnx(
      buildModel({
        inputs: [],
        outputs: [{ name: `y_${name}`, shape: [1, 32] }],
        nodes: [
          ...(withConstant ? [{ op: 'Constant', inputs: [], outputs: [`w_${name}`], attrs: {} }] : []),
          { op: 'MatMul', inputs: ['x', `w_${name}`], outputs: [`y_${name}`] },
        ],
        initializers: withConstant ? [] : [{ name: `w_${name}`, dims: [64, 32], data: weights(2, 64 * 32) }],
        graphName: name,
      }),
    ).graph;
  const thenGraph = branch('then', true);
  const elseGraph = branch('else', false);
  // The Constant's tensor attribute (buildModel has no tensor attributes; set it here).
  const constant = thenGraph?.node[0];
  if (constant)
    constant.attribute = [
      create(AttributeProtoSchema, {
        name: 'value',
        type: AttributeProto_AttributeType.TENSOR,
        t: floatTensor('', [64, 32], weights(1, 64 * 32)),
      }),
    ];
  const main = parseOnnx(
    buildModel({
      inputs: [{ name: 'x', shape: [1, 64] }],
      outputs: [{ name: 'y', shape: [1, 32] }],
      nodes: [
        { op: 'ReduceSum', inputs: ['x'], outputs: ['s'], attrs: { keepdims: 0 } },
        { op: 'Greater', inputs: ['s', 'zero'], outputs: ['cond'] },
      ],
      initializers: [{ name: 'zero', dims: [], data: Float32Array.of(0) }],
    }),
  );
  main.graph?.node.push(
    create(NodeProtoSchema, {
      opType: 'If',
      name: 'branch',
      input: ['cond'],
      output: ['y'],
      attribute: [
        create(AttributeProtoSchema, {
          name: 'then_branch',
          type: AttributeProto_AttributeType.GRAPH,
          g: thenGraph,
        }),
        create(AttributeProtoSchema, {
          name: 'else_branch',
          type: AttributeProto_AttributeType.GRAPH,
          g: elseGraph,
        }),
      ],
    }),
  );
  return serializeOnnx(main);
}

const feeds = (sign: number): Record<string, PlainTensor> => ({
  x: { dtype: 'float32', shape: [1, 64], data: weights(9, 64).map((v) => Math.abs(v) * sign) },
});

describe('subgraphs and Constant-node weights', () => {
  const model = ifModel();

  it('round-trips byte for byte and runs both branches in onnxruntime', async () => {
    expect(Buffer.from(serializeOnnx(parseOnnx(model))).equals(Buffer.from(model))).toBe(true);
    const pos = (await runOnnx(model, feeds(1))).y?.data as Float32Array;
    const neg = (await runOnnx(model, feeds(-1))).y?.data as Float32Array;
    expect(pos.length).toBe(32);
    expect(Array.from(pos)).not.toEqual(Array.from(neg).map((v) => -v)); // different weights per branch
  });

  it('int8 weight-only quantizes weights inside both branches, and the result still agrees', async () => {
    const result = await convertModel(model, { targets: ['cpu'], quantize: 'weight-only', verifyWasm: true });
    const report = result.report.artifacts.find((a) => a.precision === 'int8-weight-only');
    expect(report?.status, report?.reason).toBe('packaged');
    expect(report?.quantizedNodes.sort()).toEqual(['branch/MatMul_0', 'branch/MatMul_1']);
    expect(report?.sizeRatio).toBeLessThan(0.5);
    expect(report?.weightCoverage).toBeGreaterThan(0.95); // the Constant and subgraph weights count
    for (const r of report?.runtimes ?? []) expect(r.worst?.cosine).toBeGreaterThan(0.999);
  });

  it('fp16 converts subgraph weights and outer-scope inputs consistently (loads and agrees)', async () => {
    const result = await convertModel(model, { targets: ['webgpu'], quantize: 'fp16' });
    const report = result.report.artifacts.find((a) => a.precision === 'fp16');
    expect(report?.status, report?.reason).toBe('packaged');
    expect(report?.runtimes.every((r) => r.ok)).toBe(true);
    expect(report?.runtimes[0]?.worst?.relRmse).toBeLessThan(1e-2);
  });
});

describe('external data', () => {
  async function externalModel(location: string, options: { length?: number } = {}): Promise<string> {
    const dir = await mkdtemp(join(temp, 'ext-'));
    const model = parseOnnx(mlpModel({ inputs: 8, hidden: [16], outputs: 4 }));
    const w = model.graph?.initializer.find((t) => t.name === 'w0');
    if (!w) throw new Error('no w0');
    const bytes = w.rawData.slice();
    await writeFile(join(dir, 'weights.bin'), Buffer.concat([Buffer.alloc(64, 7), bytes]));
    w.rawData = new Uint8Array(0);
    w.dataLocation = 1;
    w.externalData = [
      { key: 'location', value: location },
      { key: 'offset', value: '64' },
      { key: 'length', value: String(options.length ?? bytes.byteLength) },
    ].map((e) => ({ $typeName: 'onnx.StringStringEntryProto', ...e }));
    await writeFile(join(dir, 'model.onnx'), serializeOnnx(model));
    return dir;
  }

  it('keeps the references byte for byte, and inlines the data to run the same model', async () => {
    const dir = await externalModel('weights.bin');
    const bytes = new Uint8Array(
      await import('node:fs/promises').then((fs) => fs.readFile(join(dir, 'model.onnx'))),
    );
    expect(Buffer.from(serializeOnnx(parseOnnx(bytes))).equals(Buffer.from(bytes))).toBe(true);
    expect(inspectOnnx(bytes).externalData).toBe(true);
    const loaded = await loadOnnxFile(join(dir, 'model.onnx'));
    const original = mlpModel({ inputs: 8, hidden: [16], outputs: 4 });
    const inputs = sampleInputs(inspectOnnx(original).inputs);
    expect((await runOnnx(serializeOnnx(loaded), inputs)).output?.data).toEqual(
      (await runOnnx(original, inputs)).output?.data,
    );
    await expect(convertModel(bytes, { targets: ['cpu'] })).rejects.toMatchObject({
      code: 'ONNX_UNSUPPORTED',
    });
  });

  it('refuses locations outside the model folder, wrong lengths and missing files with ONNX_INVALID', async () => {
    for (const [location, length] of [
      ['../weights.bin', undefined],
      ['/etc/passwd', undefined],
      ['sub/../../x.bin', undefined],
      ['weights.bin', 12],
      ['missing.bin', undefined],
    ] as const) {
      const dir = await externalModel(location, length === undefined ? {} : { length });
      await expect(loadOnnxFile(join(dir, 'model.onnx')), location).rejects.toMatchObject({
        name: 'ConverterError',
        code: 'ONNX_INVALID',
      });
    }
  });
});

describe.skipIf(!shared.available)('opset upgrade on the PyTorch-converted networks', () => {
  it('runs the expected outputs of every network it accepts, and names the op of every one it refuses', async () => {
    let upgraded = 0;
    const refused: string[] = [];
    for (const group of ['pytorch-converted', 'pytorch-operator']) {
      for (const test of await readdir(join(backendDir(), group))) {
        const c = await readBackendCase(group, test).catch(() => undefined);
        if (!c) continue; // float64 test data: no edgefleet dtype for it
        let runnable: ReturnType<typeof runnableModel>;
        try {
          runnable = runnableModel(parseOnnx(c.model));
        } catch (error) {
          expect(error).toBeInstanceOf(ConverterError);
          expect((error as ConverterError).message).toMatch(/cannot raise opset|too old/);
          refused.push(test);
          continue;
        }
        if (!runnable.note) continue; // already runnable as is
        const bytes = serializeOnnx(runnable.model);
        const specs = inspectOnnx(bytes).inputs;
        const inputs = Object.fromEntries(specs.map((s, i) => [s.name, c.inputs[i] as PlainTensor]));
        let out: Record<string, PlainTensor>;
        try {
          out = await runOnnx(bytes, inputs);
        } catch (error) {
          refused.push(`${test} (ORT: ${(error as Error).message.slice(0, 60)})`);
          continue;
        }
        const names = inspectOnnx(bytes).outputs.map((o) => o.name);
        names.forEach((name, i) => {
          const got = Array.from((out[name]?.data ?? []) as ArrayLike<number | bigint>, Number);
          const want = Array.from((c.outputs[i]?.data ?? []) as ArrayLike<number | bigint>, Number);
          expect(got.length, `${c.name} ${name}`).toBe(want.length);
          for (let k = 0; k < want.length; k++)
            if (Number.isNaN(want[k])) expect(got[k], `${c.name}[${k}]`).toBeNaN();
            else
              expect(Math.abs((got[k] as number) - (want[k] as number)), `${c.name}[${k}]`).toBeLessThan(
                1e-4 + 1e-4 * Math.abs(want[k] as number),
              );
        });
        upgraded++;
      }
    }
    console.info(
      `opset upgrade: ${upgraded} networks match their expected outputs; refused: ${refused.join(', ')}`,
    );
    expect(upgraded).toBeGreaterThan(60);
  });
});
