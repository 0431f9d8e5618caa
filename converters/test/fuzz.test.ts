/** Property-based fuzzing of the ONNX reader: corrupt, truncated and hostile models give a typed error. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  buildModel,
  ConverterError,
  convertModel,
  inspectOnnx,
  mlpModel,
  parseOnnx,
  serializeOnnx,
} from '../src/index.ts';

const valid = mlpModel({ inputs: 4, hidden: [8], outputs: 3, softmax: true });

function typedOrValid(bytes: Uint8Array): void {
  try {
    inspectOnnx(bytes);
  } catch (error) {
    expect(error, String(error)).toBeInstanceOf(ConverterError);
  }
}

describe('ONNX reader under fuzzing', () => {
  it('random bytes → ConverterError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), typedOrValid), { numRuns: 3000 });
  });

  it('a real model with bytes flipped, inserted or cut → ConverterError or a readable model', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.option(fc.nat()),
        fc.option(fc.uint8Array({ minLength: 1, maxLength: 16 })),
        (flips, cut, insert) => {
          let bytes = valid.slice(0, cut === null ? valid.byteLength : cut % (valid.byteLength + 1));
          for (const [at, value] of flips) if (bytes.byteLength > 0) bytes[at % bytes.byteLength] = value;
          if (insert && bytes.byteLength > 0) {
            const at = (flips[0]?.[0] ?? 0) % bytes.byteLength;
            bytes = Uint8Array.from([...bytes.slice(0, at), ...insert, ...bytes.slice(at)]);
          }
          typedOrValid(bytes);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('a length field claiming gigabytes is refused quickly, not allocated', () => {
    // Field 7 (graph), wire type 2, with a varint length of ~2^40.
    const hostile = Uint8Array.from([0x08, 0x08, 0x3a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x01]);
    const started = performance.now();
    expect(() => inspectOnnx(hostile)).toThrow(ConverterError);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

/** Random small graphs that parse but may make no sense: wrong arity, dangling names, bad dims. */
const arbitraryGraph = fc.record({
  opset: fc.integer({ min: 1, max: 25 }),
  nodes: fc.array(
    fc.record({
      op: fc.constantFrom(
        'Conv',
        'Gemm',
        'MatMul',
        'Relu',
        'Add',
        'Softmax',
        'Reshape',
        'BatchNormalization',
        'Transpose',
        'Clip',
        'MaxPool',
        'Flatten',
        'Cast',
        'Bogus',
      ),
      inputs: fc.array(fc.constantFrom('x', 'w', 'b', 'h0', 'h1', ''), { maxLength: 4 }),
      outputs: fc.array(fc.constantFrom('h0', 'h1', 'y'), { minLength: 1, maxLength: 2 }),
      attrs: fc.dictionary(
        fc.constantFrom('axis', 'perm', 'transB', 'kernel_shape', 'pads', 'group', 'to', 'beta'),
        fc.oneof(
          fc.integer({ min: -5, max: 12 }),
          fc.array(fc.integer({ min: -3, max: 9 }), { maxLength: 4 }),
        ),
      ),
    }),
    { minLength: 1, maxLength: 5 },
  ),
  initializers: fc.array(
    fc.record({
      name: fc.constantFrom('w', 'b', 'x'),
      dims: fc.array(fc.integer({ min: 0, max: 6 }), { maxLength: 4 }),
      count: fc.integer({ min: 0, max: 80 }),
    }),
    { maxLength: 3 },
  ),
  inputShape: fc.array(fc.oneof(fc.integer({ min: 0, max: 5 }), fc.constant('N')), { maxLength: 4 }),
  outputs: fc.array(fc.constantFrom('y', 'h0', 'h1', 'missing'), { minLength: 1, maxLength: 2 }),
  quantize: fc.constantFrom('static', 'fp16', 'weight-only', 'dynamic', 'none'),
  target: fc.constantFrom('cpu', 'webgpu'),
});

describe('the converter under fuzzing', () => {
  const outcomes = new Map<string, number>();
  it('nonsensical but parseable graphs are converted or refused with a ConverterError, never a crash', async () => {
    await fc.assert(
      fc.asyncProperty(arbitraryGraph, async (g) => {
        const bytes = buildModel({
          opset: g.opset,
          inputs: [{ name: 'x', shape: g.inputShape }],
          outputs: g.outputs.map((name) => ({ name, shape: [] })),
          nodes: g.nodes.map((n) => ({ ...n, attrs: n.attrs as Record<string, number | number[]> })),
          initializers: g.initializers.map((i) => ({
            name: i.name,
            dims: i.dims,
            data: Float32Array.from({ length: i.count }, (_, k) => Math.sin(k)),
          })),
        });
        try {
          await convertModel(bytes, { targets: [g.target], quantize: g.quantize, verifyWasm: false });
          outcomes.set('converted', (outcomes.get('converted') ?? 0) + 1);
        } catch (error) {
          expect(error, String((error as Error).stack)).toBeInstanceOf(ConverterError);
          const code = (error as ConverterError).code;
          outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
        }
      }),
      { numRuns: 400 },
    );
    console.info('fuzzed conversions:', Object.fromEntries(outcomes));
    expect(outcomes.get('converted')).toBeGreaterThan(0); // the generator does reach the passes
  }, 300_000);
});

describe('the converter on mutated real models', () => {
  const base = buildModel({
    inputs: [{ name: 'x', shape: [1, 2, 6, 6] }],
    outputs: [{ name: 'y', shape: [1, 3] }],
    nodes: [
      { op: 'Conv', inputs: ['x', 'cw', 'cb'], outputs: ['c'], attrs: { kernel_shape: [3, 3] } },
      { op: 'Relu', inputs: ['c'], outputs: ['r'] },
      { op: 'MaxPool', inputs: ['r'], outputs: ['p'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      { op: 'Flatten', inputs: ['p'], outputs: ['f'] },
      { op: 'Gemm', inputs: ['f', 'gw', 'gb'], outputs: ['g'], attrs: { transB: 1 } },
      { op: 'Softmax', inputs: ['g'], outputs: ['y'], attrs: { axis: 1 } },
    ],
    initializers: [
      { name: 'cw', dims: [4, 2, 3, 3], data: Float32Array.from({ length: 72 }, (_, i) => Math.sin(i)) },
      { name: 'cb', dims: [4], data: Float32Array.of(0.1, -0.1, 0.2, 0) },
      { name: 'gw', dims: [3, 16], data: Float32Array.from({ length: 48 }, (_, i) => Math.cos(i)) },
      { name: 'gb', dims: [3], data: Float32Array.of(0, 1, 2) },
    ],
  });
  const mutation = fc.oneof(
    fc.record({
      kind: fc.constant('dims' as const),
      at: fc.nat(),
      dims: fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 5 }),
    }),
    fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(), keep: fc.nat() }),
    fc.record({ kind: fc.constant('dtype' as const), at: fc.nat(), type: fc.integer({ min: 0, max: 17 }) }),
    fc.record({ kind: fc.constant('attr' as const), at: fc.nat(), value: fc.integer({ min: -3, max: 9 }) }),
    fc.record({
      kind: fc.constant('input' as const),
      at: fc.nat(),
      slot: fc.nat(3),
      name: fc.constantFrom('x', 'c', 'r', 'p', 'f', 'g', 'y', 'cw', 'gw', '', 'nowhere'),
    }),
    fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('opset' as const), version: fc.integer({ min: 1, max: 25 }) }),
  );

  it('mutations of a small CNN are converted or refused with a ConverterError', async () => {
    let converted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
        fc.constantFrom('static', 'fp16', 'weight-only', 'dynamic'),
        async (mutations, quantize) => {
          const model = parseOnnx(base);
          const g = model.graph;
          if (!g) return;
          for (const m of mutations) {
            const init = g.initializer[('at' in m ? m.at : 0) % g.initializer.length];
            const node = g.node[('at' in m ? m.at : 0) % Math.max(1, g.node.length)];
            if (m.kind === 'dims' && init) init.dims = m.dims.map(BigInt);
            if (m.kind === 'truncate' && init)
              init.rawData = init.rawData.slice(0, m.keep % (init.rawData.length + 1));
            if (m.kind === 'dtype' && init) init.dataType = m.type;
            if (m.kind === 'attr' && node?.attribute[0]) node.attribute[0].i = BigInt(m.value);
            if (m.kind === 'input' && node) node.input[m.slot] = m.name;
            if (m.kind === 'drop' && node) g.node = g.node.filter((n) => n !== node);
            if (m.kind === 'opset' && model.opsetImport[0]) model.opsetImport[0].version = BigInt(m.version);
          }
          try {
            await convertModel(serializeOnnx(model), { targets: ['cpu'], quantize, verifyWasm: false });
            converted++;
          } catch (error) {
            expect(error, String((error as Error).stack)).toBeInstanceOf(ConverterError);
          }
        },
      ),
      { numRuns: 400 },
    );
    expect(converted).toBeGreaterThan(10);
  }, 300_000);
});
