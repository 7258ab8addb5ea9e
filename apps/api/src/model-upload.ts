import { createWriteStream } from "node:fs";
import { mkdtemp, readFile, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import busboy from "busboy";
import { ApiError } from "./errors";

/** The parts of POST /v1/models; model and manifest are required. */
const PARTS = ["model", "manifest", "int8", "int8Manifest", "reference"] as const;
type Part = (typeof PARTS)[number];

export interface ReceivedModel {
  /** `<dir>/<base>.onnx`, laid out as `npm run adapt` writes it, ready for publishModel. */
  modelPath: string;
  fields: Record<string, string>;
  /** Removes the temp folder; call it whatever happened. */
  cleanup(): Promise<void>;
}

const tooLarge = (max: number) =>
  new ApiError(413, "request_too_large", `the model upload exceeds ${max} bytes`);

/**
 * Streams a model upload's file parts to a temp folder (never into memory), at most `maxBytes` in all, then
 * names them after the manifest: `<base>.onnx`, `<base>.json`, `<base>-int8.onnx`, `<base>-int8.json` and
 * the reference file under the name the manifest gives it.
 */
export async function receiveModel(req: Request, maxBytes: number): Promise<ReceivedModel> {
  const contentType = req.headers.get("content-type") ?? "";
  if (!/^multipart\/form-data/i.test(contentType)) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      "expected multipart/form-data with a model and a manifest",
    );
  }
  if (Number(req.headers.get("content-length") ?? Number.NaN) > maxBytes) throw tooLarge(maxBytes);
  if (!req.body) throw new ApiError(400, "missing_part", "no model part");
  const dir = await mkdtemp(path.join(tmpdir(), "garbage-model-upload-"));
  const cleanup = () => rm(dir, { recursive: true, force: true });
  try {
    const { files, fields } = await receiveParts(req, contentType, dir, maxBytes);
    return { modelPath: await arrange(dir, files), fields, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

function receiveParts(req: Request, contentType: string, dir: string, maxBytes: number) {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: { "content-type": contentType },
      limits: { files: PARTS.length, fields: 10, fieldSize: 4_096, fileSize: maxBytes + 1 },
    });
  } catch (err) {
    throw new ApiError(400, "malformed_multipart", (err as Error).message);
  }
  const files = new Map<Part, string>();
  const fields: Record<string, string> = {};
  const writes: Promise<void>[] = [];
  let total = 0;
  let failure: ApiError | undefined;
  return new Promise<{ files: Map<Part, string>; fields: Record<string, string> }>((resolve, reject) => {
    const source = Readable.fromWeb(req.body as WebReadableStream<Uint8Array>);
    const fail = (err: ApiError) => {
      failure ??= err;
      // The unread rest of the body is left to the server, which drains or closes it after the response.
      source.unpipe(parser);
      Promise.allSettled(writes).then(() => reject(failure));
    };
    parser.on("file", (name, stream) => {
      if (failure) return void stream.resume();
      if (!(PARTS as readonly string[]).includes(name) || files.has(name as Part)) {
        stream.resume();
        return fail(
          new ApiError(400, "unexpected_field", `unexpected file part "${name}"; use ${PARTS.join(", ")}`),
        );
      }
      const file = path.join(dir, `part-${name}`);
      files.set(name as Part, file);
      const count = new Transform({
        transform(chunk: Buffer, _enc, done) {
          total += chunk.length;
          done(total > maxBytes ? tooLarge(maxBytes) : null, chunk);
        },
      });
      const write = pipeline(stream, count, createWriteStream(file)).catch((err: unknown) =>
        fail(err instanceof ApiError ? err : new ApiError(400, "upload_aborted", (err as Error).message)),
      );
      writes.push(write);
    });
    parser.on("field", (name, value) => {
      fields[name] = value;
    });
    parser.on("filesLimit", () => fail(new ApiError(413, "too_many_files", "too many file parts")));
    parser.on("error", (err: Error) => fail(new ApiError(400, "malformed_multipart", err.message)));
    parser.on("close", () => {
      Promise.all(writes).then(() => (failure ? reject(failure) : resolve({ files, fields })), reject);
    });
    source.on("error", () =>
      fail(new ApiError(400, "upload_aborted", "the request body ended unexpectedly")),
    );
    source.pipe(parser);
  });
}

const plainName = (name: string) =>
  path.basename(name) === name && /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(name);

/** Renames the parts to the names the manifests use; returns the float model's path. */
async function arrange(dir: string, files: Map<Part, string>): Promise<string> {
  const model = files.get("model");
  const manifestPart = files.get("manifest");
  if (!model || !manifestPart)
    throw new ApiError(400, "missing_part", "a model upload needs model and manifest parts");
  if (files.has("int8") !== files.has("int8Manifest")) {
    throw new ApiError(400, "missing_part", "int8 and int8Manifest come together");
  }
  let manifest: { file?: unknown; review?: { reference?: { file?: unknown } } };
  try {
    manifest = JSON.parse(await readFile(manifestPart, "utf8"));
  } catch {
    throw new ApiError(400, "invalid_model", "the manifest part is not JSON");
  }
  const file = typeof manifest.file === "string" ? path.basename(manifest.file) : "";
  const base = /\.onnx$/i.test(file) && plainName(file) ? file.replace(/\.onnx$/i, "") : "model";
  const names: [Part, string][] = [
    ["model", `${base}.onnx`],
    ["manifest", `${base}.json`],
    ["int8", `${base}-int8.onnx`],
    ["int8Manifest", `${base}-int8.json`],
  ];
  const ref = manifest.review?.reference?.file;
  if (files.has("reference")) {
    if (typeof ref !== "string" || !plainName(ref)) {
      throw new ApiError(
        400,
        "invalid_model",
        "a reference part needs review.reference.file (a plain file name)",
      );
    }
    names.push(["reference", ref]);
  }
  for (const [part, name] of names) {
    const from = files.get(part);
    if (from) await rename(from, path.join(dir, name));
  }
  return path.join(dir, `${base}.onnx`);
}
