import { createHash } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { type InputSpec, runBatch, type Session, tensorSize, writeTensor } from "@garbage/inference";
import { renderView, type View } from "./views.js";

export interface ExtractOptions {
  session: Session;
  /** Identifies the backbone in the cache key (its sha256). */
  modelId: string;
  spec: InputSpec;
  cacheDir: string;
  seed: number;
  batch?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Runs the frozen backbone over every file for one view and returns [n, d] features. Cached on disk by
 * (backbone, preprocessing, view, seed, file list), so re-running training only refits the head.
 */
export async function extractFeatures(
  files: readonly string[],
  view: View,
  opts: ExtractOptions,
): Promise<{ x: Float32Array; d: number }> {
  const key = createHash("sha256")
    .update(JSON.stringify({ model: opts.modelId, spec: opts.spec, view, seed: opts.seed, files }))
    .digest("hex")
    .slice(0, 24);
  const cache = path.join(opts.cacheDir, `${view}-${key}.f32`);
  try {
    const buf = await readFile(cache);
    const x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    return { x: Float32Array.from(x), d: x.length / files.length };
  } catch {
    // not cached yet
  }
  const batch = opts.batch ?? 16;
  const size = tensorSize(opts.spec);
  const chunks: Float32Array[] = [];
  let d = 0;
  const render = (start: number) =>
    Promise.all(files.slice(start, start + batch).map((f) => renderView(f, view, opts.spec, opts.seed)));
  let next = render(0);
  for (let start = 0; start < files.length; start += batch) {
    const pixels = await next;
    // Decode the next chunk on libuv's threads while this one runs through the model.
    if (start + batch < files.length) next = render(start + batch);
    const input = new Float32Array(pixels.length * size);
    pixels.forEach((p, i) => {
      writeTensor(p, opts.spec, input, i * size);
    });
    const out = await runBatch(
      opts.session,
      input,
      [pixels.length, 3, opts.spec.height, opts.spec.width],
      opts.spec.name,
    );
    d = out.width;
    chunks.push(Float32Array.from(out.data));
    opts.onProgress?.(Math.min(start + batch, files.length), files.length);
  }
  const x = new Float32Array(files.length * d);
  let offset = 0;
  for (const c of chunks) {
    x.set(c, offset);
    offset += c.length;
  }
  await mkdir(opts.cacheDir, { recursive: true });
  await writeFile(`${cache}.tmp`, Buffer.from(x.buffer, x.byteOffset, x.byteLength));
  await rename(`${cache}.tmp`, cache);
  return { x, d };
}
