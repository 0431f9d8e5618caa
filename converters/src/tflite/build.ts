/**
 * Building a TFLite model in code: tensors with their constant buffers and quantization, operator
 * codes (written with both the deprecated and the current builtin code, as TFLite's writer does),
 * operators, and the metadata TFLite's own converter adds. Activations always use buffer 0.
 */
import {
  BufferT,
  BuiltinOperator,
  type BuiltinOptions,
  MetadataT,
  ModelT,
  OperatorCodeT,
  OperatorT,
  QuantizationParametersT,
  SubGraphT,
  TensorT,
  TensorType,
} from './generated/schema_generated.ts';

export interface TensorQuant {
  scale: number[];
  zeroPoint: number[];
  /** The axis of per-channel scales. */
  axis?: number;
}

export interface TensorSpecIn {
  name: string;
  shape: number[];
  type: TensorType;
  quant?: TensorQuant;
  /** Constant data (little-endian), for weights and biases. */
  data?: Int8Array | Uint8Array | Int32Array | Float32Array;
}

/** The operator versions TFLite's converter writes for int8 kernels (older runtimes refuse higher ones). */
const INT8_VERSIONS: Partial<Record<BuiltinOperator, number>> = {
  [BuiltinOperator.ADD]: 2,
  [BuiltinOperator.SUB]: 2,
  [BuiltinOperator.MUL]: 2,
  [BuiltinOperator.AVERAGE_POOL_2D]: 2,
  [BuiltinOperator.MAX_POOL_2D]: 2,
  [BuiltinOperator.CONCATENATION]: 2,
  [BuiltinOperator.CONV_2D]: 3,
  [BuiltinOperator.DEPTHWISE_CONV_2D]: 3,
  [BuiltinOperator.FULLY_CONNECTED]: 4,
  [BuiltinOperator.LOGISTIC]: 2,
  [BuiltinOperator.TANH]: 2,
  [BuiltinOperator.SOFTMAX]: 2,
  [BuiltinOperator.MEAN]: 2,
  [BuiltinOperator.PAD]: 2,
  [BuiltinOperator.RELU]: 2,
  [BuiltinOperator.RELU6]: 2,
  [BuiltinOperator.RELU_N1_TO_1]: 2,
  [BuiltinOperator.QUANTIZE]: 2,
  [BuiltinOperator.TRANSPOSE]: 2,
  [BuiltinOperator.RESIZE_BILINEAR]: 2,
  [BuiltinOperator.RESIZE_NEAREST_NEIGHBOR]: 2,
  [BuiltinOperator.HARD_SWISH]: 1,
  [BuiltinOperator.RESHAPE]: 1,
};

const bytesOf = (data: NonNullable<TensorSpecIn['data']>): Uint8Array =>
  new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice();

export class TfliteModelBuilder {
  private readonly tensors: TensorT[] = [];
  private readonly buffers: BufferT[] = [new BufferT()];
  private readonly codes: OperatorCodeT[] = [];
  private readonly operators: OperatorT[] = [];
  private readonly names = new Set<string>();

  /** A tensor name not used yet (TFLite does not require uniqueness; readers and people do). */
  uniqueName(base: string): string {
    let name = base;
    for (let i = 1; this.names.has(name); i++) name = `${base}_${i}`;
    this.names.add(name);
    return name;
  }

  /** Add a tensor; returns its index. */
  addTensor(spec: TensorSpecIn): number {
    const t = new TensorT(spec.shape, spec.type, 0, this.uniqueName(spec.name));
    if (spec.data) {
      t.buffer = this.buffers.length;
      this.buffers.push(new BufferT(bytesOf(spec.data)));
    }
    if (spec.quant)
      t.quantization = new QuantizationParametersT(
        [],
        [],
        spec.quant.scale.map(Math.fround),
        spec.quant.zeroPoint.map((z) => BigInt(z)),
        undefined,
        null,
        spec.quant.axis ?? 0,
      );
    this.tensors.push(t);
    return this.tensors.length - 1;
  }

  tensor(index: number): TensorT {
    const t = this.tensors[index];
    if (!t) throw new Error(`no tensor ${index}`);
    return t;
  }

  private opcode(code: BuiltinOperator): number {
    const version = INT8_VERSIONS[code] ?? 1;
    let i = this.codes.findIndex((c) => c.builtinCode === code && c.version === version);
    if (i < 0) {
      this.codes.push(new OperatorCodeT(Math.min(code, 127), null, version, code));
      i = this.codes.length - 1;
    }
    return i;
  }

  /** Append an operator (execution order is the order of calls). */
  addOperator(
    code: BuiltinOperator,
    inputs: number[],
    outputs: number[],
    optionsType?: BuiltinOptions,
    options?: OperatorT['builtinOptions'],
  ): void {
    const op = new OperatorT(this.opcode(code), inputs, outputs);
    if (optionsType !== undefined && options) {
      op.builtinOptionsType = optionsType;
      op.builtinOptions = options;
    }
    this.operators.push(op);
  }

  get operatorCount(): number {
    return this.operators.length;
  }

  /** The finished model; `minRuntimeVersion` goes into the metadata TFLite's converter writes. */
  finish(
    inputs: number[],
    outputs: number[],
    options: { description: string; minRuntimeVersion?: string },
  ): ModelT {
    const metadata: MetadataT[] = [];
    if (options.minRuntimeVersion) {
      // TFLite's converter writes it as a 16-byte, NUL-padded string.
      const text = new TextEncoder().encode(options.minRuntimeVersion);
      const padded = new Uint8Array(16);
      padded.set(text.subarray(0, 15));
      metadata.push(new MetadataT('min_runtime_version', this.buffers.length));
      this.buffers.push(new BufferT(padded));
    }
    const graph = new SubGraphT(this.tensors, inputs, outputs, this.operators, 'main');
    return new ModelT(3, this.codes, [graph], options.description, this.buffers, [], metadata);
  }
}

export { TensorType };
