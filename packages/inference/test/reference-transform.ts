/**
 * An independent reference of the model-input transform, written the way PIL/torchvision define it:
 * separable resampling with a triangle (bilinear) filter whose support widens with the downscale factor
 * (antialiasing), pixel centres at +0.5, then (x * scale - mean) / std in the requested channel order.
 */
export interface RawImage {
  data: Uint8Array;
  width: number;
  height: number;
}

function resample1d(src: Float64Array, dstLen: number): Float64Array {
  const srcLen = src.length;
  const scale = srcLen / dstLen;
  const support = Math.max(scale, 1);
  const res = new Float64Array(dstLen);
  for (let i = 0; i < dstLen; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(center - support));
    const hi = Math.min(srcLen, Math.ceil(center + support));
    let acc = 0;
    let total = 0;
    for (let j = lo; j < hi; j++) {
      const w = Math.max(0, 1 - Math.abs((j + 0.5 - center) / support));
      acc += w * (src[j] as number);
      total += w;
    }
    res[i] = acc / total;
  }
  return res;
}

/** Resizes interleaved RGB to w x h (stretch) and returns float RGB values in 0..255. */
export function referenceResize(img: RawImage, w: number, h: number): Float64Array {
  const { width, height, data } = img;
  // horizontal pass: for each row and channel
  const tmp = new Float64Array(w * height * 3);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      const row = new Float64Array(width);
      for (let x = 0; x < width; x++) row[x] = data[(y * width + x) * 3 + c] as number;
      const r = resample1d(row, w);
      for (let x = 0; x < w; x++) tmp[(y * w + x) * 3 + c] = r[x] as number;
    }
  }
  const out = new Float64Array(w * h * 3);
  for (let c = 0; c < 3; c++) {
    for (let x = 0; x < w; x++) {
      const col = new Float64Array(height);
      for (let y = 0; y < height; y++) col[y] = tmp[(y * w + x) * 3 + c] as number;
      const r = resample1d(col, h);
      for (let y = 0; y < h; y++) out[(y * w + x) * 3 + c] = r[y] as number;
    }
  }
  return out;
}

export function referenceTensor(
  rgb: Float64Array,
  w: number,
  h: number,
  spec: { channelOrder: "RGB" | "BGR"; scale: number; mean: readonly number[]; std: readonly number[] },
): Float32Array {
  const plane = w * h;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const src = spec.channelOrder === "RGB" ? c : 2 - c;
    for (let i = 0; i < plane; i++) {
      out[c * plane + i] =
        ((rgb[i * 3 + src] as number) * spec.scale - (spec.mean[c] as number)) / (spec.std[c] as number);
    }
  }
  return out;
}
