import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type LabelledImage, listImageFolder } from "@garbage/inference";
import sharp from "sharp";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");
export const MODELS_DIR = path.join(REPO_ROOT, "models");
export const TRASHNET_VAL = path.resolve(REPO_ROOT, "../shared/datasets/trashnet/val");

export interface ImageSet {
  /** e.g. "512x384 TrashNet val" or "4000x3000 generated". */
  name: string;
  files: string[];
  /** Class folder of each file when the set is labelled (TrashNet), for an accuracy check. */
  folders?: string[];
}

/** A gradient with a little noise, so JPEG sizes and decode work resemble a photo more than flat colour. */
async function syntheticJpeg(file: string, width: number, height: number, seed: number): Promise<void> {
  const raw = Buffer.allocUnsafe(width * height * 3);
  let s = (seed * 2654435761 + 1) >>> 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const n = (s >>> 24) % 24;
      const i = (y * width + x) * 3;
      raw[i] = ((x * 255) / width + n + seed * 40) & 255;
      raw[i + 1] = ((y * 255) / height + n) & 255;
      raw[i + 2] = (((x + y) * 128) / (width + height) + n * 2) & 255;
    }
  }
  const jpeg = await sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
  await writeFile(file, jpeg);
}

/** Generated JPEGs in a temp dir; `dispose()` removes them. */
export class Generated {
  private constructor(readonly dir: string) {}
  private readonly sets = new Map<string, ImageSet>();

  static async create(): Promise<Generated> {
    return new Generated(await mkdtemp(path.join(tmpdir(), "garbage-bench-")));
  }

  /** `count` distinct width x height JPEGs, made once per run. */
  async set(width: number, height: number, count: number): Promise<ImageSet> {
    const key = `${width}x${height}`;
    const known = this.sets.get(key);
    if (known && known.files.length >= count) return known;
    const files: string[] = [];
    for (let i = 0; i < count; i++) {
      const file = path.join(this.dir, `${key}-${i}.jpg`);
      if (!existsSync(file)) await syntheticJpeg(file, width, height, i);
      files.push(file);
    }
    const set = { name: `${key} generated`, files };
    this.sets.set(key, set);
    return set;
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

let trashnet: Promise<ImageSet | null> | undefined;

/** TrashNet's val images (512x384 JPEGs), or null when ../shared/datasets/trashnet is absent. */
export function trashnetVal(): Promise<ImageSet | null> {
  trashnet ??= (async () => {
    if (!existsSync(TRASHNET_VAL)) return null;
    const items: LabelledImage[] = await listImageFolder(TRASHNET_VAL, []);
    return {
      name: "512x384 TrashNet val",
      files: items.map((f) => f.file),
      folders: items.map((f) => f.folder),
    };
  })();
  return trashnet;
}

/** The 512x384 images the cli, pipeline and classify suites use: TrashNet val, else generated ones. */
export async function photoSet(generated: Generated, log: (s: string) => void): Promise<ImageSet> {
  const t = await trashnetVal();
  if (t) return t;
  log(`no TrashNet at ${TRASHNET_VAL}: using 128 generated 512x384 JPEGs instead`);
  return generated.set(512, 384, 128);
}
