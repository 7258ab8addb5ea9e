import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import sharp from "sharp";

export const SIZE = 224;
const CAFFE_MEAN_BGR = [103.939, 116.779, 123.68] as const;

/** One image as the converted graph and Keras both want it, in both layouts. */
export interface CaffeImage {
  label: string;
  nchw: Float32Array;
  nhwc: Float32Array;
}

/** 224x224 RGB bytes -> BGR floats minus the ImageNet means, no scaling (keras "caffe" mode). */
function fromRgb(label: string, rgb: Uint8Array): CaffeImage {
  const plane = SIZE * SIZE;
  const nchw = new Float32Array(3 * plane);
  const nhwc = new Float32Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const value = (rgb[p * 3 + (2 - c)] ?? Number.NaN) - (CAFFE_MEAN_BGR[c] ?? Number.NaN);
      nchw[c * plane + p] = value;
      nhwc[p * 3 + c] = value;
    }
  }
  return { label, nchw, nhwc };
}

export async function loadCaffeImage(file: string): Promise<CaffeImage> {
  const { data, info } = await sharp(file)
    .removeAlpha()
    .resize(SIZE, SIZE, { fit: "fill" })
    .toColourspace("srgb")
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`${file} decoded to ${info.channels} channels`);
  return fromRgb(path.basename(file), data);
}

/** A smooth colour gradient with a bright disc, so it has edges and colour rather than flat noise. */
export function syntheticImage(seed: number): CaffeImage {
  const rgb = new Uint8Array(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      const inDisc = (x - 112 - seed * 10) ** 2 + (y - 100) ** 2 < 60 ** 2;
      const i = (y * SIZE + x) * 3;
      rgb[i] = inDisc ? 240 : (x * (seed + 1)) % 256;
      rgb[i + 1] = inDisc ? 200 : (y * 2 + seed * 40) % 256;
      rgb[i + 2] = inDisc ? 30 : ((x + y) * 3) % 256;
    }
  }
  return fromRgb(`synthetic-${seed}`, rgb);
}

/** The first image of each requested trashnet class, if the shared dataset is mounted (read in place). */
export function trashnetSamples(repoRoot: string, classes: readonly string[]): string[] {
  const root = path.resolve(repoRoot, "../shared/datasets/trashnet/val");
  if (!existsSync(root)) return [];
  return classes.flatMap((cls) => {
    const dir = path.join(root, cls);
    const first = existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => /\.jpe?g$/i.test(f))
          .sort()[0]
      : undefined;
    return first ? [path.join(dir, first)] : [];
  });
}
