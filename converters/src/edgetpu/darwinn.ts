/**
 * The Edge TPU's compiled package ("DWN1", a DarwiNN `Package` flatbuffer in libedgetpu's
 * executable schema), read by hand for the fields an operator needs: minimum runtime version,
 * compiler version, chip, parameter bytes, and the numerics of every input and output. Field ids
 * follow the schema's declaration order; every read is bounds-checked.
 */
import { TfliteError } from '../tflite/errors.ts';
import { GuardedByteBuffer, OutOfBoundsError } from '../tflite/guarded-buffer.ts';

export interface EdgeTpuLayer {
  name: string;
  sizeBytes: number;
  /** y, x, z as the compiler laid the tensor out (a 1-D tensor is 1 × 1 × N). */
  shape: [number, number, number];
  dataType: string;
  zeroPoint: number;
  dequantizationFactor: number;
  executionCount: number;
}

export interface EdgeTpuExecutable {
  type: 'STAND_ALONE' | 'PARAMETER_CACHING' | 'EXECUTION_ONLY' | string;
  name?: string;
  chip?: string;
  batchSize: number;
  parameterBytes: number;
  instructionBytes: number;
  scratchBytes: number;
  /** Executables with the same token can share the 8 MB on-chip parameter cache (co-compilation). */
  parameterCachingToken: string;
  estimatedCycles?: number;
  inputs: EdgeTpuLayer[];
  outputs: EdgeTpuLayer[];
}

export interface EdgeTpuPackage {
  minRuntimeVersion: number;
  compilerVersion?: string;
  modelIdentifier?: string;
  virtualChipId: number;
  executables: EdgeTpuExecutable[];
}

const EXECUTABLE_TYPES = ['STAND_ALONE', 'PARAMETER_CACHING', 'EXECUTION_ONLY'];
const DATA_TYPES: Record<number, string> = {
  0: 'FIXED_POINT8',
  1: 'FIXED_POINT16',
  2: 'SIGNED_FIXED_POINT32',
  3: 'BFLOAT',
  4: 'HALF',
  5: 'SINGLE',
  8: 'SIGNED_FIXED_POINT8',
  9: 'SIGNED_FIXED_POINT16',
};

/** One flatbuffer table: typed field access by field id. */
class Table {
  constructor(
    private readonly bb: GuardedByteBuffer,
    private readonly pos: number,
  ) {}

  static root(bytes: Uint8Array): Table {
    const bb = new GuardedByteBuffer(bytes);
    return new Table(bb, bb.readInt32(0));
  }

  private slot(id: number): number {
    const o = this.bb.__offset(this.pos, 4 + 2 * id);
    return o ? this.pos + o : 0;
  }

  int(id: number, fallback = 0): number {
    const at = this.slot(id);
    return at ? this.bb.readInt32(at) : fallback;
  }

  short(id: number, fallback = 0): number {
    const at = this.slot(id);
    return at ? this.bb.readInt16(at) : fallback;
  }

  float(id: number): number {
    const at = this.slot(id);
    return at ? this.bb.readFloat32(at) : 0;
  }

  long(id: number): bigint {
    const at = this.slot(id);
    return at ? this.bb.readInt64(at) : 0n;
  }

  string(id: number): string | undefined {
    const at = this.slot(id);
    return at ? (this.bb.__string(at) as string) : undefined;
  }

  /** A [ubyte] vector (or a string's raw bytes) as a view. */
  bytes(id: number): Uint8Array | undefined {
    const at = this.slot(id);
    if (!at) return undefined;
    const start = this.bb.__vector(at);
    return this.bb.bytes().subarray(start, start + this.bb.__vector_len(at));
  }

  table(id: number): Table | undefined {
    const at = this.slot(id);
    return at ? new Table(this.bb, this.bb.__indirect(at)) : undefined;
  }

  tables(id: number): Table[] {
    const at = this.slot(id);
    if (!at) return [];
    const start = this.bb.__vector(at);
    const out: Table[] = [];
    for (let i = 0, n = this.bb.__vector_len(at); i < n; i++)
      out.push(new Table(this.bb, this.bb.__indirect(start + 4 * i)));
    return out;
  }

  /** A vector of strings, each as raw bytes (DarwiNN stores nested flatbuffers that way). */
  blobs(id: number): Uint8Array[] {
    const at = this.slot(id);
    if (!at) return [];
    const start = this.bb.__vector(at);
    const out: Uint8Array[] = [];
    for (let i = 0, n = this.bb.__vector_len(at); i < n; i++) {
      const s = this.bb.__indirect(start + 4 * i);
      const len = this.bb.__vector_len(start + 4 * i);
      out.push(this.bb.bytes().subarray(s + 4, s + 4 + len));
    }
    return out;
  }
}

function layer(t: Table): EdgeTpuLayer {
  const numerics = t.table(5);
  const type = t.short(6);
  return {
    name: t.string(0) ?? '',
    sizeBytes: t.int(1),
    shape: [t.int(2), t.int(3), t.int(4)],
    dataType: DATA_TYPES[type] ?? `type ${type}`,
    zeroPoint: numerics?.int(0) ?? 0,
    dequantizationFactor: numerics?.float(1) ?? 0,
    executionCount: t.int(9, 1),
  };
}

function executable(bytes: Uint8Array): EdgeTpuExecutable {
  const e = Table.root(bytes);
  const type = e.short(13);
  const cycles = e.long(16);
  const name = e.string(1);
  const chip = e.string(10);
  return {
    type: EXECUTABLE_TYPES[type] ?? `type ${type}`,
    ...(name ? { name } : {}),
    ...(chip ? { chip } : {}),
    batchSize: e.int(3),
    parameterBytes: e.bytes(6)?.byteLength ?? 0,
    instructionBytes: e.tables(5).reduce((sum, b) => sum + (b.bytes(0)?.byteLength ?? 0), 0),
    scratchBytes: e.int(4),
    parameterCachingToken: BigInt.asUintN(64, e.long(14)).toString(16),
    ...(cycles > 0n ? { estimatedCycles: Number(cycles) } : {}),
    inputs: e.tables(8).map(layer),
    outputs: e.tables(9).map(layer),
  };
}

/** Parse a DWN1 package; EDGETPU_INVALID when it is not one or is corrupt. */
export function readDarwinnPackage(bytes: Uint8Array): EdgeTpuPackage {
  if (bytes.byteLength < 8 || new TextDecoder().decode(bytes.subarray(4, 8)) !== 'DWN1')
    throw new TfliteError('EDGETPU_INVALID', 'the Edge TPU op does not hold a DarwiNN package ("DWN1")');
  try {
    const own = bytes.slice(); // the guarded reader must see exactly these bytes
    const p = Table.root(own);
    const multi = p.bytes(1);
    const compilerVersion = p.string(4);
    const modelIdentifier = p.string(7);
    return {
      minRuntimeVersion: p.int(0),
      ...(compilerVersion ? { compilerVersion } : {}),
      ...(modelIdentifier ? { modelIdentifier } : {}),
      virtualChipId: p.int(5, 0),
      executables: multi
        ? Table.root(multi.slice())
            .blobs(0)
            .map((b) => executable(b.slice()))
        : [],
    };
  } catch (cause) {
    if (cause instanceof TfliteError) throw cause;
    const why = cause instanceof OutOfBoundsError ? cause.message : (cause as Error).message;
    throw new TfliteError('EDGETPU_INVALID', `the Edge TPU package is corrupt: ${why}`, { cause });
  }
}
