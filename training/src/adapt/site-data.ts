import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import path from "node:path";
import { createDb, reviews } from "@garbage/db";
import { createStore, reviewedEntries } from "@garbage/storage";
import { inArray, max } from "drizzle-orm";
import sharp from "sharp";

/** Longer side of the prepared copies: adapt.py's views never need more, and decoding stays cheap. */
const PREPARED_SIDE = 640;

export interface SiteData {
  /** The prepared copies, <dir>/<class>/<name>.jpg. */
  dir: string;
  perClass: Record<string, number>;
  images: number;
  /** Photos that could not be decoded, left out. */
  skipped: string[];
  /** With --site: the latest review among the photos used; reviews after it are unseen by the model. */
  dataUntil: string | null;
}

/**
 * One photo as adapt.py reads it: decoded by sharp (every format the service accepts, HEIF included),
 * turned upright by its EXIF orientation as the served path does, downscaled, written as JPEG.
 */
async function prepare(bytes: Buffer | string, file: string): Promise<void> {
  await sharp(bytes, { limitInputPixels: 100_000_000 })
    .rotate()
    .resize(PREPARED_SIDE, PREPARED_SIDE, { fit: "inside", withoutEnlargement: true })
    .jpeg({ quality: 92 })
    .toFile(file);
}

/** A folder `<root>/<class>/<image>` (symbolic links followed), classes unknown to the model refused. */
export async function prepareFolder(root: string, classes: string[], out: string): Promise<SiteData> {
  const data: SiteData = { dir: out, perClass: {}, images: 0, skipped: [], dataUntil: null };
  const entries = await readdir(root, { withFileTypes: true }).catch((err: Error) => {
    throw new Error(`cannot read --data ${root}: ${err.message}`);
  });
  for (const entry of entries) {
    const sub = path.join(root, entry.name);
    if (!(await stat(sub)).isDirectory() || entry.name.startsWith(".")) continue;
    if (!classes.includes(entry.name)) {
      throw new Error(
        `--data has a folder '${entry.name}', not one of the model's classes (${classes.join(", ")})`,
      );
    }
    await mkdir(path.join(out, entry.name), { recursive: true });
    for (const name of (await readdir(sub)).sort()) {
      if (name.startsWith(".")) continue;
      const src = path.join(sub, name);
      if (!(await stat(src)).isFile()) continue;
      const dest = path.join(out, entry.name, `${path.parse(name).name}.jpg`);
      try {
        await prepare(await readFile(src), dest);
        data.perClass[entry.name] = (data.perClass[entry.name] ?? 0) + 1;
        data.images++;
      } catch {
        data.skipped.push(path.relative(root, src));
      }
    }
  }
  return data;
}

/** A site's reviewed photos straight from Postgres and the image store (DATABASE_URL, STORAGE_URL). */
export async function prepareSite(
  site: string,
  classes: string[],
  out: string,
  env: { databaseUrl: string; storageUrl: string },
): Promise<SiteData> {
  const handle = createDb(env.databaseUrl, { max: 2 });
  try {
    const store = createStore(env.storageUrl, { db: handle.db });
    const data: SiteData = { dir: out, perClass: {}, images: 0, skipped: [], dataUntil: null };
    const ids: string[] = [];
    for await (const entry of reviewedEntries(handle.db, store, { sites: null, site })) {
      if (!classes.includes(entry.label)) continue;
      await mkdir(path.join(out, entry.label), { recursive: true });
      try {
        await prepare(entry.bytes, path.join(out, entry.label, `${entry.imageId}.jpg`));
        data.perClass[entry.label] = (data.perClass[entry.label] ?? 0) + 1;
        data.images++;
        ids.push(entry.imageId);
      } catch {
        data.skipped.push(entry.path);
      }
    }
    for (let i = 0; i < ids.length; i += 1000) {
      const [row] = await handle.db
        .select({ until: max(reviews.reviewedAt) })
        .from(reviews)
        .where(inArray(reviews.imageId, ids.slice(i, i + 1000)));
      const until = row?.until?.toISOString() ?? null;
      if (until && (!data.dataUntil || until > data.dataUntil)) data.dataUntil = until;
    }
    return data;
  } finally {
    await handle.close();
  }
}
