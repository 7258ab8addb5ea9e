import { readFile, stat } from "node:fs/promises";
import sharp, { type Metadata } from "sharp";
import { ImageError } from "./errors.js";
import type { InputSpec } from "./manifest.js";

export interface DecodeLimits {
  /** Refuse inputs larger than this many bytes (default 25 MiB). */
  maxBytes?: number;
  /** Refuse images with more pixels than this (decompression bombs; default 40 megapixels). */
  maxPixels?: number;
  /** Give up on one image after this long (default 10 s). */
  timeoutSeconds?: number;
}

export const DEFAULT_LIMITS: Required<DecodeLimits> = {
  maxBytes: 25 * 1024 * 1024,
  maxPixels: 40_000_000,
  timeoutSeconds: 10,
};

const SUPPORTED = new Set(["jpeg", "png", "webp", "gif", "tiff", "heif", "avif"]);

export type ImageInput = Buffer | Uint8Array | string;

/** 8-bit interleaved RGB pixels, already oriented, flattened and resized to the model's input size. */
export interface Pixels {
  data: Buffer;
  width: number;
  height: number;
}

async function readInput(input: ImageInput, maxBytes: number): Promise<Buffer> {
  if (typeof input !== "string") {
    if (input.byteLength > maxBytes) throw tooLarge(input.byteLength, maxBytes);
    return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  }
  let size: number;
  try {
    size = (await stat(input)).size;
  } catch (err) {
    throw new ImageError("unreadable", `cannot read ${input}: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  if (size > maxBytes) throw tooLarge(size, maxBytes);
  return readFile(input);
}

function tooLarge(size: number, max: number): ImageError {
  return new ImageError("too_large", `image is ${size} bytes, the limit is ${max}`);
}

/**
 * Decodes any supported format to 8-bit sRGB at the model's input size. Every failure becomes an
 * ImageError so one bad upload can never take a whole batch (or the process) down.
 */
export async function decodeImage(
  input: ImageInput,
  spec: InputSpec,
  limits: DecodeLimits = {},
): Promise<Pixels> {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  const bytes = await readInput(input, lim.maxBytes);
  // limitInputPixels makes libvips refuse bombs from the header alone, before allocating the image.
  const open = () => sharp(bytes, { limitInputPixels: lim.maxPixels, failOn: "error", pages: 1 });
  let meta: Metadata;
  try {
    meta = await open().metadata();
  } catch (err) {
    throw classify(err);
  }
  if (!meta.format || !SUPPORTED.has(meta.format)) {
    throw new ImageError("unsupported_format", `unsupported image format: ${meta.format ?? "unknown"}`);
  }
  if ((meta.width ?? 0) * (meta.height ?? 0) > lim.maxPixels) {
    throw new ImageError(
      "too_many_pixels",
      `image is ${meta.width}x${meta.height}, the limit is ${lim.maxPixels} pixels`,
    );
  }
  try {
    // rotate() applies EXIF orientation; flatten() composites alpha on white like a photo backdrop;
    // toColourspace('srgb') turns greyscale, CMYK and 16-bit inputs into 8-bit sRGB.
    let img = open().timeout({ seconds: lim.timeoutSeconds }).rotate().flatten({ background: "#ffffff" });
    img = img.toColourspace("srgb");
    if (spec.resize === "stretch") {
      img = img.resize(spec.width, spec.height, { fit: "fill", kernel: "linear" });
    } else {
      const shorter = spec.resizeShorter ?? Math.min(spec.width, spec.height);
      const [w, h] = orientedSize(meta);
      const k = shorter / Math.min(w, h);
      const rw = Math.max(spec.width, Math.round(w * k));
      const rh = Math.max(spec.height, Math.round(h * k));
      const resized = await img
        .resize(rw, rh, { fit: "fill", kernel: "linear" })
        .removeAlpha()
        .raw()
        .toBuffer();
      img = sharp(resized, { raw: { width: rw, height: rh, channels: 3 } }).extract({
        left: Math.floor((rw - spec.width) / 2),
        top: Math.floor((rh - spec.height) / 2),
        width: spec.width,
        height: spec.height,
      });
    }
    const { data, info } = await img
      .removeAlpha()
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3 || info.width !== spec.width || info.height !== spec.height) {
      throw new ImageError("corrupt", `decoder produced ${info.width}x${info.height}x${info.channels}`);
    }
    return { data, width: info.width, height: info.height };
  } catch (err) {
    throw classify(err);
  }
}

function orientedSize(meta: Metadata): [number, number] {
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  return (meta.orientation ?? 1) >= 5 ? [h, w] : [w, h];
}

function classify(err: unknown): ImageError {
  if (err instanceof ImageError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (/pixel limit/i.test(msg))
    return new ImageError("too_many_pixels", `image exceeds the pixel limit: ${msg}`);
  if (/timeout/i.test(msg)) return new ImageError("timeout", `decoding took too long: ${msg}`);
  if (/unsupported image format/i.test(msg))
    return new ImageError("unsupported_format", "not a supported image format");
  return new ImageError("corrupt", `cannot decode image: ${msg.split("\n")[0]}`);
}
