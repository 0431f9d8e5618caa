/**
 * Byte-level encoding of window fields: LEB128 varints with zero runs collapsed, little-endian
 * floats, base64url. Counts are small integers, mostly non-zero in the bins and zero in the guard
 * and invalid slots, so this keeps a 20-variable window well under 2 KB of JSON.
 */
import { DriftError } from '../errors.ts';

export class ByteWriter {
  private buf = new Uint8Array(64);
  private len = 0;

  private ensure(extra: number): void {
    if (this.len + extra <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + extra));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  varint(v: number): void {
    this.ensure(8);
    let x = v;
    while (x >= 128) {
      this.buf[this.len++] = (x % 128) | 128;
      x = Math.floor(x / 128);
    }
    this.buf[this.len++] = x;
  }

  /** Non-negative integers; a run of r zeros is written as 0 then r. */
  counts(values: readonly number[]): void {
    this.varint(values.length);
    for (let i = 0; i < values.length; ) {
      if (values[i] === 0) {
        let r = 0;
        while (i < values.length && values[i] === 0) {
          r++;
          i++;
        }
        this.varint(0);
        this.varint(r);
      } else this.varint(values[i++]!);
    }
  }

  float64(v: number): void {
    this.ensure(8);
    new DataView(this.buf.buffer).setFloat64(this.len, v, true);
    this.len += 8;
  }

  float32(v: number): void {
    this.ensure(4);
    new DataView(this.buf.buffer).setFloat32(this.len, v, true);
    this.len += 4;
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

export class ByteReader {
  private pos = 0;
  private dataView: DataView | undefined;
  constructor(private readonly buf: Uint8Array) {}

  private get view(): DataView {
    this.dataView ??= new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    return this.dataView;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  varint(): number {
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw fail('truncated varint');
      result += (b & 127) * scale;
      if (b < 128) return result;
      scale *= 128;
    }
    throw fail('varint too long');
  }

  counts(maxLength: number): number[] {
    const length = this.varint();
    if (length > maxLength) throw fail(`${length} counts, at most ${maxLength} allowed`);
    const out: number[] = [];
    while (out.length < length) {
      const v = this.varint();
      if (v !== 0) {
        out.push(v);
        continue;
      }
      const run = this.varint();
      if (run === 0 || out.length + run > length) throw fail('bad zero run');
      for (let i = 0; i < run; i++) out.push(0);
    }
    return out;
  }

  float64(): number {
    if (this.remaining < 8) throw fail('truncated float');
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  float32(): number {
    if (this.remaining < 4) throw fail('truncated float');
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
}

function fail(message: string): DriftError {
  return new DriftError('DRIFT_WINDOW_INVALID', `window payload: ${message}`);
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const LOOKUP = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) LOOKUP[ALPHABET.charCodeAt(i)] = i;

/** base64url without padding. */
export function toBase64Url(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((bytes.length - i) * 8) / 6));
    for (let k = 0; k < chars; k++) out += ALPHABET[(n >> (18 - 6 * k)) & 63];
  }
  return out;
}

export function fromBase64Url(text: string): Uint8Array {
  if (text.length % 4 === 1) throw fail('bad base64 length');
  const out = new Uint8Array(Math.floor((text.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const v = c < 128 ? LOOKUP[c]! : -1;
    if (v < 0) throw fail('bad base64 character');
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 255;
    }
  }
  return out;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float32 nearest to v in the given direction (so a rounded min stays ≤ the true min). */
export function float32Toward(v: number, direction: 'down' | 'up'): number {
  f32[0] = v;
  const r = f32[0]!;
  if (r === v || !Number.isFinite(r)) return r;
  if ((direction === 'down' && r < v) || (direction === 'up' && r > v)) return r;
  // Step one ulp in the wanted direction.
  const towardZero = (direction === 'down') === r > 0;
  if (r === 0) {
    u32[0] = direction === 'down' ? 0x80000001 : 1;
    return f32[0]!;
  }
  u32[0] = towardZero ? u32[0]! - 1 : u32[0]! + 1;
  return f32[0]!;
}
