import type { Pixels } from "./decode.js";
import type { InputSpec } from "./manifest.js";

/**
 * Writes one image into `out` at `offset` in CHW order:
 * value = (pixel * scale - mean[c]) / std[c], channels in the model's order.
 */
export function writeTensor(pixels: Pixels, spec: InputSpec, out: Float32Array, offset = 0): void {
  const plane = spec.width * spec.height;
  if (pixels.width * pixels.height !== plane) throw new Error("pixels do not match the input size");
  const { data } = pixels;
  for (let c = 0; c < 3; c++) {
    const src = spec.channelOrder === "RGB" ? c : 2 - c;
    const mul = spec.scale / (spec.std[c] as number);
    const add = -(spec.mean[c] as number) / (spec.std[c] as number);
    const base = offset + c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = (data[i * 3 + src] as number) * mul + add;
  }
}

export function tensorSize(spec: InputSpec): number {
  return 3 * spec.width * spec.height;
}

/** Mirrors an image left-right in place (test-time and training augmentation). */
export function flipPixels(pixels: Pixels): Pixels {
  const { width, height, data } = pixels;
  const out = Buffer.allocUnsafe(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = (y * width + x) * 3;
      const d = (y * width + (width - 1 - x)) * 3;
      out[d] = data[s] as number;
      out[d + 1] = data[s + 1] as number;
      out[d + 2] = data[s + 2] as number;
    }
  }
  return { width, height, data: out };
}
