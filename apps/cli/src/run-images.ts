import type { Classifier, Outcome } from "@garbage/inference";
import { ImageError, type Pixels } from "@garbage/inference";
import type { Progress } from "./progress.js";

/**
 * Classifies files in chunks of `batch`, decoding the next chunk (on libuv's threads, inside sharp) while
 * the current one runs through the model, so the CPU never waits on JPEG decoding.
 */
export async function classifyFiles(
  classifier: Classifier,
  files: readonly string[],
  opts: { batch: number; topK: number; progress: Progress },
): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const decodeChunk = (start: number) =>
    Promise.all(
      files
        .slice(start, start + opts.batch)
        .map((f) => classifier.decode(f).catch((e: unknown) => asImageError(e))),
    );
  let next = files.length > 0 ? decodeChunk(0) : null;
  for (let start = 0; next; start += opts.batch) {
    const decoded = await next;
    next = start + opts.batch < files.length ? decodeChunk(start + opts.batch) : null;
    const good = decoded.filter((d): d is Pixels => !(d instanceof ImageError));
    const preds = good.length ? await classifier.classifyPixels(good, { topK: opts.topK }) : [];
    let j = 0;
    for (const d of decoded) {
      outcomes.push(
        d instanceof ImageError
          ? { ok: false, error: { code: d.code, message: d.message } }
          : (preds[j++] as Outcome),
      );
    }
    opts.progress.tick(decoded.length);
  }
  opts.progress.stop();
  return outcomes;
}

function asImageError(e: unknown): ImageError {
  return e instanceof ImageError ? e : new ImageError("corrupt", e instanceof Error ? e.message : String(e));
}
