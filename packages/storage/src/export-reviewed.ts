import { type DbOrTx, listReviewedImages, type ReviewedImage } from "@garbage/db";
import type { ImageStore } from "./store";
import { StorageError } from "./store";

/**
 * The training-data export shared by the API's tar download and `garbage export-reviewed`: every reviewed
 * image (confirmed or corrected) as `<class>/<imageId>.<ext>`, the ImageFolder layout `npm run train` reads.
 */
export interface ExportEntry {
  /** Relative path inside the export: `<class>/<imageId>.<ext>`. */
  path: string;
  imageId: string;
  label: string;
  bytes: Buffer;
}

const EXTENSIONS: Record<string, string> = {
  "image/jpeg": "jpg",
  "image/png": "png",
  "image/webp": "webp",
  "image/gif": "gif",
  "image/tiff": "tif",
  "image/avif": "avif",
  "image/heif": "heic",
};

/** The file extension for an image: from its sniffed content type, else its name, else `bin`. */
export function extensionOf(image: Pick<ReviewedImage, "contentType" | "filename">): string {
  const known = image.contentType ? EXTENSIONS[image.contentType] : undefined;
  if (known) return known;
  const fromName = /\.([A-Za-z0-9]{1,5})$/.exec(image.filename ?? "")?.[1];
  return fromName ? fromName.toLowerCase() : "bin";
}

/**
 * A class name as a folder name. Labels are checked against the model's classes when a review is written,
 * so this only guards against a manifest with odd class names: no separators, no dot-only names.
 */
export function classFolder(label: string): string {
  const safe = label.replace(/[^\p{L}\p{N} ._-]/gu, "_").trim();
  return safe === "" || /^\.+$/.test(safe) ? "_" : safe;
}

export interface ExportOptions {
  sites: readonly string[] | null;
  site?: string | null;
  /** Rows read per query. */
  pageSize?: number;
  /** Told about an image whose bytes are gone from storage; it is left out of the export. */
  onMissing?: (image: ReviewedImage) => void;
}

/** Walks the reviewed images page by page, reading each image's bytes only when its entry is asked for. */
export async function* reviewedEntries(
  db: DbOrTx,
  store: Pick<ImageStore, "get">,
  options: ExportOptions,
): AsyncGenerator<ExportEntry> {
  const limit = options.pageSize ?? 200;
  let after: string | null = null;
  for (;;) {
    const page = await listReviewedImages(db, {
      sites: options.sites,
      site: options.site ?? null,
      after,
      limit,
    });
    for (const image of page) {
      let bytes: Buffer;
      try {
        bytes = await store.get(image.storageKey);
      } catch (err) {
        if (err instanceof StorageError && err.code !== "too_large") {
          options.onMissing?.(image);
          continue;
        }
        throw err;
      }
      yield {
        path: `${classFolder(image.label)}/${image.imageId}.${extensionOf(image)}`,
        imageId: image.imageId,
        label: image.label,
        bytes,
      };
    }
    if (page.length < limit) return;
    after = page.at(-1)?.imageId ?? null;
  }
}
