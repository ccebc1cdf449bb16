// Writes safetensors files for the tests (random models, the safetensors tests); the product only reads them
// (src/lib/model/safetensors.ts). Also the float32 → F16/BF16 rounding the writer needs, and BF16's inverse.
import * as fs from 'node:fs';
import { bytesPerElement } from '../../src/lib/model/safetensors';

const HEADER_LENGTH_BYTES = 8;

// Scratch views for reinterpreting float32 bits.
const scratchFloat = new Float32Array(1);
const scratchBits = new Uint32Array(scratchFloat.buffer);

/** float32 → IEEE half bits, rounding to nearest even; overflow gives ±Infinity, NaN stays NaN. */
export function float32ToFloat16Bits(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0];
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 | (mantissa >>> 13) : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal half (or zero): shift the full significand, implicit bit included, into place.
    if (halfExponent < -10) return sign;
    const significand = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    let half = significand >>> shift;
    const remainder = significand & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to Infinity).
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) === 1)) half++;
  return sign | half;
}

/** float32 → bfloat16 bits (the top half of the float32), rounding to nearest even; NaN stays NaN. */
export function float32ToBfloat16Bits(value: number): number {
  scratchFloat[0] = value;
  const bits = scratchBits[0];
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) return (bits >>> 16) | 0x40;
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  // Plain arithmetic: `bits + rounding` can pass 2^32 only for NaNs, handled above.
  return Math.floor((bits + rounding) / 0x10000) & 0xffff;
}

export function bfloat16BitsToFloat32(bits: number): number {
  scratchBits[0] = (bits & 0xffff) << 16;
  return scratchFloat[0];
}

export interface TensorToWrite {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16';
  shape: number[];
  data: Float32Array;
}

function encodeTensor(tensor: TensorToWrite): Uint8Array {
  switch (tensor.dtype) {
    case 'F32':
      return new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    case 'F16':
    case 'BF16': {
      const convert = tensor.dtype === 'F16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
      const halves = new Uint16Array(tensor.data.length);
      for (let i = 0; i < halves.length; i++) halves[i] = convert(tensor.data[i]);
      return new Uint8Array(halves.buffer);
    }
  }
}

/** Writes float32 data as a safetensors file, converting to each tensor's dtype. */
export function writeSafetensors(file: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  // No prototype, so that a tensor named "__proto__" is an ordinary key.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let dataLength = 0;
  for (const tensor of tensors) {
    if (tensor.name === '__metadata__' || Object.hasOwn(header, tensor.name)) {
      throw new Error(`writeSafetensors: duplicate or reserved tensor name "${tensor.name}"`);
    }
    const elements = tensor.shape.reduce((product, size) => product * size, 1);
    if (elements !== tensor.data.length) {
      throw new Error(`writeSafetensors: tensor "${tensor.name}" has shape [${tensor.shape.join(', ')}] but ${tensor.data.length} values`);
    }
    const length = elements * bytesPerElement(tensor.dtype);
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [dataLength, dataLength + length] };
    dataLength += length;
  }

  // The spec pads the header with spaces so that the data starts 8-byte aligned.
  let headerText = JSON.stringify(header);
  const unpadded = Buffer.byteLength(headerText, 'utf8');
  headerText += ' '.repeat((8 - ((HEADER_LENGTH_BYTES + unpadded) % 8)) % 8);
  const headerBytes = Buffer.from(headerText, 'utf8');
  const prefix = Buffer.alloc(HEADER_LENGTH_BYTES);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length), 0);

  const fd = fs.openSync(file, 'w');
  try {
    writeAll(fd, prefix);
    writeAll(fd, headerBytes);
    for (const tensor of tensors) writeAll(fd, encodeTensor(tensor));
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}
