import { decodeImage, flipPixels, type InputSpec, type Pixels } from "@garbage/inference";
import { prng } from "@garbage/onnx";
import sharp from "sharp";

/** A deterministic augmentation: same name, same pixels, on every machine and run. */
export type View = "orig" | "flip" | `crop${number}`;

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * orig and flip go through the serving decoder, so training sees exactly what production sees. cropN is
 * torchvision's RandomResizedCrop (area 35-100%, aspect 3/4-4/3) plus a coin-flip mirror, seeded by
 * (seed, file, N).
 */
export async function renderView(file: string, view: View, spec: InputSpec, seed: number): Promise<Pixels> {
  if (view === "orig") return decodeImage(file, spec);
  if (view === "flip") return flipPixels(await decodeImage(file, spec));
  const rand = prng(hash(`${seed}:${view}:${file}`));
  const img = sharp(file).rotate();
  const meta = await sharp(file).metadata();
  const swap = (meta.orientation ?? 1) >= 5;
  const w = (swap ? meta.height : meta.width) ?? 1;
  const h = (swap ? meta.width : meta.height) ?? 1;
  let box = { left: 0, top: 0, width: w, height: h };
  for (let attempt = 0; attempt < 10; attempt++) {
    const area = w * h * (0.35 + 0.65 * rand());
    const ratio = Math.exp(Math.log(3 / 4) + rand() * Math.log(16 / 9));
    const cw = Math.round(Math.sqrt(area * ratio));
    const ch = Math.round(Math.sqrt(area / ratio));
    if (cw <= w && ch <= h && cw > 0 && ch > 0) {
      box = {
        left: Math.floor(rand() * (w - cw + 1)),
        top: Math.floor(rand() * (h - ch + 1)),
        width: cw,
        height: ch,
      };
      break;
    }
  }
  const mirror = rand() < 0.5;
  const { data, info } = await img
    .extract(box)
    .flatten({ background: "#ffffff" })
    .toColourspace("srgb")
    .resize(spec.width, spec.height, { fit: "fill", kernel: "linear" })
    .removeAlpha()
    .raw({ depth: "uchar" })
    .toBuffer({ resolveWithObject: true });
  const px = { data, width: info.width, height: info.height };
  return mirror ? flipPixels(px) : px;
}
