import { mkdir } from "node:fs/promises";
import { createDb, type DbHandle, ensureDatabase, migrate } from "@garbage/db";
import { writeTinyModel, writeTinyReviewModel } from "@garbage/onnx";
import { sql } from "drizzle-orm";
import sharp from "sharp";
import { DATABASE_URL } from "./processes";

export const TINY_CLASSES = ["reddish", "greenish", "bluish"] as const;
export type Shade = "red" | "green" | "blue" | "grey";
const RGB: Record<Shade, [number, number, number]> = {
  red: [230, 20, 20],
  green: [20, 230, 20],
  blue: [20, 20, 230],
  grey: [128, 128, 128],
};

/** A small noisy solid-colour JPEG; with `exifTime` ("YYYY:MM:DD HH:MM:SS") it carries DateTimeOriginal. */
export async function photo(shade: Shade, seed: number, exifTime?: string): Promise<Buffer> {
  const [r, g, b] = RGB[shade];
  const w = 48;
  const h = 36;
  const raw = Buffer.alloc(w * h * 3);
  let s = seed * 2654435761 + 1;
  for (let i = 0; i < raw.length; i += 3) {
    s = (s * 1103515245 + 12345) >>> 0;
    const n = (s >>> 24) % 9;
    raw[i] = r - 4 + n;
    raw[i + 1] = g - 4 + n;
    raw[i + 2] = b - 4 + n;
  }
  let img = sharp(raw, { raw: { width: w, height: h, channels: 3 } });
  if (exifTime) img = img.withExif({ IFD2: { DateTimeOriginal: exifTime, OffsetTimeOriginal: "+00:00" } });
  return img.jpeg({ quality: 85 }).toBuffer();
}

export async function openDb(): Promise<DbHandle> {
  await ensureDatabase(DATABASE_URL);
  const handle = createDb(DATABASE_URL, { max: 3 });
  await migrate(handle.db);
  return handle;
}

export interface Row {
  filename: string;
  site: string | null;
  line: string | null;
  camera: string | null;
  captured_at: Date;
  status: string | null;
  label: string | null;
  needs_review: boolean | null;
  storage_key: string | null;
  model_version: string | null;
  image_id: string;
  /** Picked for a blind audit when recorded (issue 20). */
  audit: boolean | null;
}

/** Every image of a site with its batch's camera and its result (null columns: no result yet). */
export async function rowsOfSite(db: DbHandle, site: string): Promise<Row[]> {
  const res = await db.db.execute<Row & Record<string, unknown>>(sql`
    select i.filename, i.site, i.line, b.camera, i.captured_at, r.status, r.label, r.needs_review, i.storage_key,
      r.model_version, i.id as image_id, r.audit
    from images i join batches b on b.id = i.batch_id left join results r on r.image_id = i.id
    where i.site = ${site} order by i.captured_at, i.filename`);
  return res.rows;
}

export async function tinyModel(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return writeTinyModel(dir, {
    name: "tiny",
    classes: TINY_CLASSES,
    size: 8,
    seed: 7,
    manifest: { version: "test-1" },
  });
}

/** Red familiar, blue unfamiliar (flagged), grey low confidence (flagged). */
export async function reviewModel(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return writeTinyReviewModel(dir, {
    name: "review",
    classes: TINY_CLASSES,
    size: 8,
    seed: 7,
    manifest: { version: "test-1" },
    references: [[1, 0, 0]],
    maxDistance: 0.5,
  });
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs: number,
) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
