import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import busboy from "busboy";
import { ApiError } from "./errors";

/**
 * Reads the one image of POST /v1/classify into memory (bounded by maxBytes): either the multipart part named
 * `image` or a raw body sent with an image/* content type.
 */
export async function readSingleImage(req: Request, maxBytes: number): Promise<Buffer> {
  const type = (req.headers.get("content-type") ?? "").toLowerCase();
  if (Number(req.headers.get("content-length") ?? 0) > maxBytes + 64 * 1024) throw tooLarge(maxBytes);
  if (!req.body) throw new ApiError(400, "no_image", "the request has no body");
  const source = Readable.fromWeb(req.body as WebReadableStream<Uint8Array>);
  if (type.startsWith("image/")) return collect(source, maxBytes);
  if (!type.startsWith("multipart/form-data")) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      "send multipart/form-data with an `image` part or an image/* body",
    );
  }

  let parser: busboy.Busboy;
  try {
    parser = busboy({
      // The original header: the boundary is case-sensitive (Chromium's is "----WebKitFormBoundaryAbC...").
      headers: { "content-type": req.headers.get("content-type") ?? "" },
      limits: { files: 1, fileSize: maxBytes + 1, fields: 10 },
    });
  } catch (err) {
    throw new ApiError(400, "malformed_multipart", (err as Error).message);
  }
  return new Promise<Buffer>((resolve, reject) => {
    let image: Promise<Buffer> | undefined;
    const fail = (err: ApiError) => {
      source.unpipe(parser);
      reject(err);
    };
    parser.on("file", (name, file) => {
      if (name !== "image" || image) return void file.resume();
      image = collect(file, maxBytes);
      image.catch(fail);
    });
    parser.on("filesLimit", () => fail(new ApiError(400, "too_many_files", "send exactly one `image` part")));
    parser.on("error", (err: Error) => fail(new ApiError(400, "malformed_multipart", err.message)));
    source.on("error", () =>
      fail(new ApiError(400, "upload_aborted", "the request body ended unexpectedly")),
    );
    parser.on("close", () => {
      if (!image) fail(new ApiError(400, "no_image", "no file part named `image`"));
      else image.then(resolve, reject);
    });
    source.pipe(parser);
  });
}

async function collect(stream: Readable, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxBytes) {
      stream.destroy();
      throw tooLarge(maxBytes);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, bytes);
}

function tooLarge(maxBytes: number): ApiError {
  return new ApiError(413, "file_too_large", `image exceeds ${maxBytes} bytes`);
}
