import { randomUUID } from "node:crypto";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import type { NewImage } from "@garbage/db";
import { type ImageStore, StorageError, uploadKey } from "@garbage/storage";
import busboy from "busboy";
import { ApiError } from "./errors";
import { cleanFilename, type FilenameNote } from "./filename";
import { SNIFF_BYTES, sniffImageType } from "./sniff";

export interface UploadLimits {
  maxFileBytes: number;
  maxFiles: number;
  maxRequestBytes: number;
}

/** An upload that delivers fewer than `bytes` within `ms` (from its start or the last time it did) is idle. */
export interface UploadIdle {
  ms: number;
  bytes: number;
}

export interface ReceivedUpload {
  fields: Record<string, string>;
  /** In upload order; `rejected` ones were not stored. */
  images: (NewImage & { id: string })[];
  /** Keys written to the store, for cleanup when the batch cannot be created. */
  storedKeys: string[];
  /** Filenames that were stored other than sent. */
  filenameNotes: FilenameNote[];
}

const FILE_FIELDS = new Set(["images", "images[]"]);
const MAX_FIELDS = 20;

/**
 * Streams a multipart request's `images` parts into the store one by one, never holding more than a file's
 * in-flight chunks in memory. Files whose magic bytes are not an image are kept as rejected entries (not
 * stored). Any failure deletes what was stored (a file being written is abandoned, its `.part` removed) and
 * throws an ApiError; the rest of the body is then read and discarded until deliverRejections closes the
 * connection. An idle upload (UploadIdle) fails with 408 the same way.
 */
export async function receiveUpload(
  req: Request,
  deps: {
    store: ImageStore;
    limits: UploadLimits;
    batchId: string;
    idle?: UploadIdle;
    /** Longest field value; default 1 KiB (a site name), more for a route with a JSON field. */
    fieldSize?: number;
    /** Answer an upload without file parts instead of refusing it (400 no_images). */
    filesOptional?: boolean;
  },
): Promise<ReceivedUpload> {
  const { store, limits, batchId } = deps;
  const contentType = req.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data/i.test(contentType)) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      'expected multipart/form-data with file parts named "images"',
    );
  }
  const declared = Number(req.headers.get("content-length") ?? Number.NaN);
  if (declared > limits.maxRequestBytes) throw requestTooLarge(limits);
  if (!req.body) throw new ApiError(400, "no_images", 'no file parts named "images"');

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { "content-type": contentType },
      // Browsers and curl send filenames as UTF-8; busboy's default (latin1) would turn "Müll" into "MÃ¼ll".
      defParamCharset: "utf8",
      // The directory part of a name (a folder upload's "photos/a.jpg") is dropped by cleanFilename, which
      // says so; busboy would drop it silently.
      preservePath: true,
      limits: {
        files: limits.maxFiles,
        fields: MAX_FIELDS,
        fieldSize: deps.fieldSize ?? 1_024,
        parts: limits.maxFiles + MAX_FIELDS,
        // One byte over the limit is enough for the store to notice and refuse.
        fileSize: limits.maxFileBytes + 1,
      },
    });
  } catch (err) {
    throw new ApiError(400, "malformed_multipart", (err as Error).message);
  }

  const source = Readable.fromWeb(req.body as WebReadableStream<Uint8Array>);
  const result: ReceivedUpload = { fields: {}, images: [], storedKeys: [], filenameNotes: [] };
  const pending: Promise<void>[] = [];
  const active = new Set<Readable>();
  let failure: ApiError | undefined;
  let received = 0;
  let idleTimer: NodeJS.Timeout | undefined;

  const done = new Promise<void>((resolve, reject) => {
    const finish = async () => {
      clearTimeout(idleTimer);
      await Promise.allSettled(pending);
      if (failure) {
        await Promise.allSettled(result.storedKeys.map((key) => store.delete(key)));
        reject(failure);
      } else resolve();
    };
    const fail = (err: ApiError) => {
      if (failure) return;
      failure = err;
      source.unpipe(parser);
      // Discard the rest rather than stop reading: a paused body fills the socket's buffers and the answer
      // would end in a reset (deliver-rejections.ts bounds how long this goes on).
      source.resume();
      for (const file of active) file.destroy(err);
      void finish();
    };

    // Progress, not mere activity: a byte a second keeps a socket busy but is no upload.
    const idle = deps.idle;
    let sinceProgress = 0;
    if (idle) {
      idleTimer = setTimeout(
        () =>
          fail(
            new ApiError(
              408,
              "upload_idle",
              `the upload sent fewer than ${idle.bytes} bytes in ${idle.ms} ms and was aborted`,
            ),
          ),
        idle.ms,
      );
    }
    source.on("data", (chunk: Buffer) => {
      received += chunk.length;
      if (received > limits.maxRequestBytes) fail(requestTooLarge(limits));
      sinceProgress += chunk.length;
      if (idle && !failure && sinceProgress >= idle.bytes) {
        sinceProgress = 0;
        idleTimer?.refresh();
      }
    });
    source.on("error", () =>
      fail(new ApiError(400, "upload_aborted", "the request body ended unexpectedly")),
    );

    parser.on("file", (name, file, info) => {
      if (failure) return void file.resume();
      if (!FILE_FIELDS.has(name)) {
        file.resume();
        return fail(new ApiError(400, "unexpected_field", `unexpected file field "${name}"; use "images"`));
      }
      const id = randomUUID();
      const filename = cleanFilename(info.filename, result.images.length);
      result.filenameNotes.push(...filename.notes);
      const image: ReceivedUpload["images"][number] = {
        id,
        index: result.images.length,
        filename: filename.name,
        storageKey: uploadKey(batchId, id),
        bytes: 0,
      };
      result.images.push(image);
      active.add(file);
      const work = storeFile(store, file, image, limits)
        .then((stored) => {
          if (stored) result.storedKeys.push(stored);
        })
        .catch((err: unknown) => fail(toApiError(err, limits, image.filename)))
        .finally(() => active.delete(file));
      pending.push(work);
    });
    parser.on("field", (name, value, info) => {
      if (info.valueTruncated)
        return fail(new ApiError(400, "validation_error", `field "${name}" is too long`));
      result.fields[name] = value;
    });
    parser.on("filesLimit", () =>
      fail(new ApiError(413, "too_many_files", `at most ${limits.maxFiles} images per request`)),
    );
    parser.on("fieldsLimit", () =>
      fail(new ApiError(400, "too_many_fields", `at most ${MAX_FIELDS} fields`)),
    );
    parser.on("partsLimit", () =>
      fail(new ApiError(413, "too_many_files", `at most ${limits.maxFiles} images per request`)),
    );
    parser.on("error", (err: Error) => fail(new ApiError(400, "malformed_multipart", err.message)));
    parser.on("close", () => {
      if (!failure) void finish();
    });
    source.pipe(parser);
  });

  await done;
  if (result.images.length === 0 && !deps.filesOptional) {
    throw new ApiError(400, "no_images", 'no file parts named "images"');
  }
  return result;
}

/** Returns the key it stored, or null for a rejected (non-image) part. */
async function storeFile(
  store: ImageStore,
  file: Readable,
  image: ReceivedUpload["images"][number],
  limits: UploadLimits,
): Promise<string | null> {
  const iterator = file[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let headBytes = 0;
  while (headBytes < SNIFF_BYTES) {
    const next = await iterator.next();
    if (next.done) break;
    head.push(next.value);
    headBytes += next.value.length;
  }
  const prefix = Buffer.concat(head);
  const type = sniffImageType(prefix);
  async function* all() {
    if (prefix.length > 0) yield prefix;
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) yield next.value;
  }
  if (!type) {
    let bytes = 0;
    for await (const chunk of all()) {
      bytes += chunk.length;
      if (bytes > limits.maxFileBytes) throw fileTooLarge(image.filename, limits);
    }
    Object.assign(image, {
      bytes,
      storageKey: null,
      rejected: {
        code: "unsupported_format",
        message: "not a supported image (jpeg, png, webp, gif, tiff, avif, heif)",
      },
    });
    return null;
  }
  const key = image.storageKey as string;
  const stored = await store.put(key, all(), { maxBytes: limits.maxFileBytes });
  Object.assign(image, { bytes: stored.bytes, sha256: stored.sha256, contentType: type });
  return key;
}

function toApiError(err: unknown, limits: UploadLimits, filename: string | null | undefined): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StorageError && err.code === "too_large") return fileTooLarge(filename, limits);
  return new ApiError(503, "storage_unavailable", `could not store the upload: ${(err as Error).message}`);
}

function fileTooLarge(filename: string | null | undefined, limits: UploadLimits): ApiError {
  const name = filename ? ` "${filename}"` : "";
  return new ApiError(413, "file_too_large", `image${name} exceeds ${limits.maxFileBytes} bytes`);
}

function requestTooLarge(limits: UploadLimits): ApiError {
  return new ApiError(413, "request_too_large", `request body exceeds ${limits.maxRequestBytes} bytes`);
}
