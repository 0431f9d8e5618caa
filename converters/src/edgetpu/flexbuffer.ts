/**
 * A small, bounds-checked FlexBuffers reader for custom-op options (the Edge TPU op keeps its
 * compiled package there as a FlexBuffer string of raw bytes, which the flatbuffers package's
 * reader can only hand back decoded as UTF-8). Hostile input gives a FlexError, never a hang:
 * every offset is checked and nesting and element counts are bounded.
 */

export class FlexError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlexError';
  }
}

/** String, key and blob payloads keep their raw bytes. */
export class FlexBytes {
  constructor(
    readonly kind: 'string' | 'key' | 'blob',
    readonly bytes: Uint8Array,
  ) {}
  get text(): string {
    return new TextDecoder().decode(this.bytes);
  }
}

export type FlexValue = null | boolean | number | bigint | FlexBytes | FlexValue[] | Map<string, FlexValue>;

const T = {
  NULL: 0,
  INT: 1,
  UINT: 2,
  FLOAT: 3,
  KEY: 4,
  STRING: 5,
  INDIRECT_INT: 6,
  INDIRECT_UINT: 7,
  INDIRECT_FLOAT: 8,
  MAP: 9,
  VECTOR: 10,
  VECTOR_INT: 11,
  VECTOR_UINT: 12,
  VECTOR_FLOAT: 13,
  VECTOR_KEY: 14,
  BLOB: 25,
  BOOL: 26,
  VECTOR_BOOL: 36,
} as const;

const MAX_DEPTH = 32;

class Reader {
  private budget: number;
  private readonly view: DataView;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.budget = 16 + 4 * bytes.byteLength;
  }

  private check(at: number, width: number): void {
    if (!Number.isInteger(at) || at < 0 || at + width > this.bytes.byteLength)
      throw new FlexError(`offset ${at} is outside the ${this.bytes.byteLength}-byte buffer`);
  }

  uint(at: number, width: number): number {
    this.check(at, width);
    if (width === 1) return this.view.getUint8(at);
    if (width === 2) return this.view.getUint16(at, true);
    if (width === 4) return this.view.getUint32(at, true);
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new FlexError('an offset or size beyond 2^53');
    return Number(v);
  }

  int(at: number, width: number): number | bigint {
    this.check(at, width);
    if (width === 1) return this.view.getInt8(at);
    if (width === 2) return this.view.getInt16(at, true);
    if (width === 4) return this.view.getInt32(at, true);
    const v = this.view.getBigInt64(at, true);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  float(at: number, width: number): number {
    this.check(at, width);
    if (width === 4) return this.view.getFloat32(at, true);
    if (width === 8) return this.view.getFloat64(at, true);
    throw new FlexError(`a float of ${width} bytes`);
  }

  indirect(at: number, width: number): number {
    return at - this.uint(at, width);
  }

  private spend(n: number): void {
    this.budget -= n;
    if (this.budget < 0) throw new FlexError('more elements than the buffer can hold');
  }

  private sized(at: number, width: number): number {
    const size = this.uint(at - width, width);
    this.spend(size);
    return size;
  }

  private key(at: number): FlexBytes {
    let end = at;
    while (this.uint(end, 1) !== 0) end++;
    this.spend(end - at + 1);
    return new FlexBytes('key', this.bytes.slice(at, end));
  }

  /** The value in a slot at `at` of `parentWidth` bytes, whose packed type is `packed`. */
  value(at: number, parentWidth: number, packed: number, depth: number): FlexValue {
    if (depth > MAX_DEPTH) throw new FlexError('nested too deeply');
    const type = packed >> 2;
    const width = 1 << (packed & 3);
    switch (type) {
      case T.NULL:
        return null;
      case T.INT:
        return this.int(at, parentWidth);
      case T.UINT:
        return this.uint(at, parentWidth);
      case T.FLOAT:
        return this.float(at, parentWidth);
      case T.BOOL:
        return this.uint(at, parentWidth) !== 0;
      case T.INDIRECT_INT:
        return this.int(this.indirect(at, parentWidth), width);
      case T.INDIRECT_UINT:
        return this.uint(this.indirect(at, parentWidth), width);
      case T.INDIRECT_FLOAT:
        return this.float(this.indirect(at, parentWidth), width);
      case T.KEY:
        return this.key(this.indirect(at, parentWidth));
      case T.STRING:
      case T.BLOB: {
        const start = this.indirect(at, parentWidth);
        const size = this.sized(start, width);
        this.check(start, size);
        return new FlexBytes(type === T.STRING ? 'string' : 'blob', this.bytes.slice(start, start + size));
      }
      case T.VECTOR:
      case T.MAP: {
        const start = this.indirect(at, parentWidth);
        const size = this.sized(start, width);
        this.check(start, size * width + size);
        const values: FlexValue[] = [];
        for (let i = 0; i < size; i++)
          values.push(
            this.value(start + i * width, width, this.uint(start + size * width + i, 1), depth + 1),
          );
        if (type === T.VECTOR) return values;
        const keysAt = this.indirect(start - 3 * width, width);
        const keyWidth = this.uint(start - 2 * width, width);
        if (![1, 2, 4, 8].includes(keyWidth)) throw new FlexError(`map keys of width ${keyWidth}`);
        if (this.uint(keysAt - keyWidth, keyWidth) !== size)
          throw new FlexError('map with more values than keys');
        const map = new Map<string, FlexValue>();
        for (let i = 0; i < size; i++)
          map.set(this.key(this.indirect(keysAt + i * keyWidth, keyWidth)).text, values[i] as FlexValue);
        return map;
      }
      case T.VECTOR_INT:
      case T.VECTOR_UINT:
      case T.VECTOR_FLOAT:
      case T.VECTOR_BOOL:
      case T.VECTOR_KEY: {
        const start = this.indirect(at, parentWidth);
        const size = this.sized(start, width);
        this.check(start, size * width);
        const out: FlexValue[] = [];
        for (let i = 0; i < size; i++) {
          const p = start + i * width;
          out.push(
            type === T.VECTOR_INT
              ? this.int(p, width)
              : type === T.VECTOR_UINT
                ? this.uint(p, width)
                : type === T.VECTOR_FLOAT
                  ? this.float(p, width)
                  : type === T.VECTOR_BOOL
                    ? this.uint(p, width) !== 0
                    : this.key(this.indirect(p, width)),
          );
        }
        return out;
      }
      default:
        throw new FlexError(`value type ${type} is not supported here`);
    }
  }
}

/** Decode a FlexBuffer; FlexError when it is malformed. */
export function readFlexBuffer(bytes: Uint8Array): FlexValue {
  if (bytes.byteLength < 3)
    throw new FlexError(`a FlexBuffer needs at least 3 bytes, got ${bytes.byteLength}`);
  const reader = new Reader(bytes);
  const width = bytes[bytes.byteLength - 1] as number;
  if (![1, 2, 4, 8].includes(width)) throw new FlexError(`root width ${width}`);
  const packed = bytes[bytes.byteLength - 2] as number;
  return reader.value(bytes.byteLength - 2 - width, width, packed, 0);
}
