/**
 * A flatbuffers ByteBuffer that refuses to read outside its bytes. The stock reader returns
 * `undefined` (coerced to 0) past the end, so a hostile length makes the generated unpack() loop
 * for billions of elements; here every read is bounds-checked and the total number of reads is
 * capped, which also stops "billion laughs" files whose tables share sub-tables many times over.
 */
import { ByteBuffer } from 'flatbuffers';

/** Thrown by the guarded buffer; readers turn it into their own typed error. */
export class OutOfBoundsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OutOfBoundsError';
  }
}

/**
 * Reads a legitimate file needs: every element of every vector once (5–8 reads each through the
 * generated accessors) plus a few per table field. Far below this for real models.
 */
const READS_PER_BYTE = 64;
const BASE_READS = 1_000_000;

export class GuardedByteBuffer extends ByteBuffer {
  private readonly size: number;
  private reads = 0;
  private readonly budget: number;

  constructor(bytes: Uint8Array) {
    super(bytes);
    this.size = bytes.byteLength;
    this.budget = BASE_READS + READS_PER_BYTE * bytes.byteLength;
  }

  private check(offset: number, width: number): void {
    if (++this.reads > this.budget)
      throw new OutOfBoundsError('the file references its own tables too many times (hostile or corrupt)');
    if (!Number.isInteger(offset) || offset < 0 || offset + width > this.size)
      throw new OutOfBoundsError(`a reference points outside the file (byte ${offset} of ${this.size})`);
  }

  override readUint8(offset: number): number {
    this.check(offset, 1);
    return super.readUint8(offset);
  }

  override readInt8(offset: number): number {
    this.check(offset, 1);
    return super.readInt8(offset);
  }

  override readUint16(offset: number): number {
    this.check(offset, 2);
    return super.readUint16(offset);
  }

  override readInt16(offset: number): number {
    this.check(offset, 2);
    return super.readInt16(offset);
  }

  override readInt32(offset: number): number {
    this.check(offset, 4);
    return super.readInt32(offset);
  }

  override readUint32(offset: number): number {
    this.check(offset, 4);
    return super.readUint32(offset);
  }

  override readInt64(offset: number): bigint {
    this.check(offset, 8);
    return super.readInt64(offset);
  }

  override readUint64(offset: number): bigint {
    this.check(offset, 8);
    return super.readUint64(offset);
  }

  override readFloat32(offset: number): number {
    this.check(offset, 4);
    return super.readFloat32(offset);
  }

  override readFloat64(offset: number): number {
    this.check(offset, 8);
    return super.readFloat64(offset);
  }

  /** A vector's length, refused when even one byte per element would run past the end. */
  override __vector_len(offset: number): number {
    const start = offset + this.readInt32(offset);
    const length = this.readInt32(start);
    if (length < 0 || start + 4 + length > this.size)
      throw new OutOfBoundsError(`a vector of ${length} elements runs past the end of the file`);
    return length;
  }

  override __string(offset: number, encoding?: number): string | Uint8Array {
    const start = offset + this.readInt32(offset);
    const length = this.readInt32(start);
    if (length < 0 || start + 4 + length > this.size)
      throw new OutOfBoundsError(`a string of ${length} bytes runs past the end of the file`);
    return super.__string(offset, encoding);
  }
}
