// A [row][column] map as a PNG heatmap, without a browser: the product's one colour scale (src/shared/colorScale.ts,
// blue positive, red negative, zero-centred) laid over white, each cell a square of pixels, row 0 at the top (layer 0
// first, as the panel draws it). An 8-bit RGB PNG with one IDAT chunk, compressed by node:zlib.
import { deflateSync } from 'node:zlib';
import { MAX_ALPHA, normalise, symmetricMax } from '../../shared/colorScale';
import { crc32 } from '../../lib/files/crc32';

/** The light theme's hues of colorScale.ts (the image has a white background). */
const POSITIVE = [33, 102, 172] as const;
const NEGATIVE = [178, 24, 43] as const;

/** Pixels per cell side: small maps are scaled up to at least ~256 pixels wide, large ones stay one pixel per cell at worst. */
function cellSize(rows: number, columns: number): number {
  return Math.max(1, Math.min(32, Math.floor(512 / Math.max(rows, columns, 1))));
}

/** The RGB of a value on a domain [-maxAbs, maxAbs], over white: the scale's colour at its opacity. */
export function heatmapRgb(value: number, maxAbs: number): [number, number, number] {
  const t = normalise(value, maxAbs);
  const alpha = Math.abs(t) * MAX_ALPHA;
  const hue = t >= 0 ? POSITIVE : NEGATIVE;
  return [0, 1, 2].map((i) => Math.round(255 * (1 - alpha) + hue[i] * alpha)) as [number, number, number];
}

export function heatmapPng(map: readonly (readonly number[])[]): { bytes: Buffer; width: number; height: number } {
  const rows = map.length;
  const columns = rows > 0 ? map[0].length : 0;
  const size = cellSize(rows, columns);
  const width = columns * size;
  const height = rows * size;
  const maxAbs = symmetricMax(map.flat());
  // Each scanline: filter byte 0 (none), then RGB per pixel.
  const stride = 1 + 3 * width;
  const raw = Buffer.alloc(stride * height);
  for (let r = 0; r < rows; r++) {
    const line = Buffer.alloc(stride);
    for (let c = 0; c < columns; c++) {
      const [red, green, blue] = heatmapRgb(map[r][c], maxAbs);
      for (let x = c * size; x < (c + 1) * size; x++) line.set([red, green, blue], 1 + 3 * x);
    }
    for (let y = r * size; y < (r + 1) * size; y++) line.copy(raw, y * stride);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace
  const bytes = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  return { bytes, width, height };
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}
