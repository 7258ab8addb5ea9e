import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { createDb, type DbHandle, ensureDatabase, migrate } from "@garbage/db";
import { writeTinyModel as writeTiny, writeTinyReviewModel } from "@garbage/onnx";
import sharp from "sharp";

export const REPO_ROOT = path.resolve(import.meta.dirname, "../../..");
export const TEST_DATABASE_URL =
  process.env.TEST_DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/garbage_test";
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? "redis://127.0.0.1:6379";
export const REAL_MODEL = path.join(REPO_ROOT, "models/garbage-resnet50.onnx");
export const TRASHNET_VAL = path.resolve(REPO_ROOT, "../shared/datasets/trashnet/val");

export const realModelPresent = () =>
  existsSync(REAL_MODEL) && existsSync(REAL_MODEL.replace(/\.onnx$/, ".json"));

/** Hue classes of the tiny model: pure red, green and blue images land in these three. */
export const TINY_CLASSES = ["reddish", "greenish", "bluish"] as const;

/** A migrated handle on the shared test database. Never truncate it: other suites use it concurrently. */
export async function openTestDb(): Promise<DbHandle> {
  await ensureDatabase(TEST_DATABASE_URL);
  const handle = createDb(TEST_DATABASE_URL, { max: 4 });
  await migrate(handle.db);
  return handle;
}

export const randomQueueName = (prefix = "worker-test") => `${prefix}-${randomUUID()}`;

/**
 * Writes @garbage/onnx's deterministic tiny classifier and its manifest into `dir`; returns the .onnx path.
 * A large `size` makes the (synchronous) tensor fill and run heavy enough to measure event-loop blocking.
 */
export async function writeTinyModel(dir: string, size = 8, name = "tiny"): Promise<string> {
  await mkdir(dir, { recursive: true });
  return writeTiny(dir, { name, classes: TINY_CLASSES, size, seed: 7, manifest: { version: "test-1" } });
}

/**
 * The same tiny model with a review section: its logits are the embedding and the only reference points
 * at "reddish", so red images are familiar, blue ones unfamiliar (cosine distance > 1), and grey ones,
 * near-uniform, need review for low confidence.
 */
export async function writeReviewModel(dir: string, name = "review"): Promise<string> {
  await mkdir(dir, { recursive: true });
  return writeTinyReviewModel(dir, {
    name,
    classes: TINY_CLASSES,
    size: 8,
    seed: 7,
    manifest: { version: "test-1" },
    references: [[1, 0, 0]],
    maxDistance: 0.5,
  });
}

export type Colour = "red" | "green" | "blue";
/** Grey has no hue: the tiny model's probabilities are near-uniform, so its confidence is below 0.5. */
export type Shade = Colour | "grey";
const RGB: Record<Shade, { r: number; g: number; b: number }> = {
  red: { r: 230, g: 20, b: 20 },
  green: { r: 20, g: 230, b: 20 },
  blue: { r: 20, g: 20, b: 230 },
  grey: { r: 128, g: 128, b: 128 },
};
export const EXPECTED_LABEL: Record<Colour, string> = { red: "reddish", green: "greenish", blue: "bluish" };

/** A solid-colour JPEG with a little noise so files differ and decoding is real work. */
export async function colourJpeg(colour: Shade, width = 64, height = 48, seed = 0): Promise<Buffer> {
  const { r, g, b } = RGB[colour];
  const raw = Buffer.alloc(width * height * 3);
  let s = seed * 2654435761 + 1;
  for (let i = 0; i < raw.length; i += 3) {
    s = (s * 1103515245 + 12345) >>> 0;
    const n = (s >>> 24) % 9;
    raw[i] = r - 4 + n;
    raw[i + 1] = g - 4 + n;
    raw[i + 2] = b - 4 + n;
  }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

/** Bytes that start like a JPEG and then stop: sharp reads the header and fails on the data. */
export async function truncatedJpeg(): Promise<Buffer> {
  const good = await colourJpeg("red", 64, 48, 99);
  return good.subarray(0, Math.floor(good.length / 3));
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
