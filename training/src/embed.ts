import { writeFile } from "node:fs/promises";
import path from "node:path";
import {
  createSession,
  DEFAULT_LIMITS,
  decodeImage,
  type InputSpec,
  type LabelledImage,
  runOutputs,
  tensorSize,
  writeTensor,
} from "@garbage/inference";

/** What the recipe's models take: Keras' caffe preprocessing (BGR, ImageNet means, no scaling), stretched. */
export function kerasInputSpec(size: number): InputSpec {
  return {
    name: "input",
    layout: "NCHW",
    width: size,
    height: size,
    resize: "stretch",
    channelOrder: "BGR",
    scale: 1,
    mean: [103.939, 116.779, 123.68],
    std: [1, 1, 1],
  };
}

/** The decodable images of `chunk` (undecodable ones are skipped) as one input tensor, as the service makes it. */
export async function tensorBatch(
  chunk: readonly LabelledImage[],
  spec: InputSpec,
): Promise<{ batch: Float32Array; good: LabelledImage[] }> {
  const pixels = await Promise.all(
    chunk.map((i) => decodeImage(i.file, spec, DEFAULT_LIMITS).catch(() => null)),
  );
  const good = chunk.filter((_, j) => pixels[j]);
  const size = tensorSize(spec);
  const batch = new Float32Array(good.length * size);
  pixels
    .filter((p) => p !== null)
    .forEach((p, j) => {
      writeTensor(p, spec, batch, j * size);
    });
  return { batch, good };
}

/**
 * Logits and pooled embeddings of a set of images, computed exactly as the service computes them (sharp
 * decoding, the manifest's tensor layout, onnxruntime-node), for calibrate.py to fit the temperature, the
 * reference embeddings and the review thresholds on. Writes <out>/<name>.f32 (logits, then embeddings,
 * float32 little-endian) and <out>/<name>.json.
 */
export async function embedImages(opts: {
  model: string;
  spec: InputSpec;
  images: readonly LabelledImage[];
  out: string;
  name: string;
  threads?: number;
  batch?: number;
}): Promise<void> {
  const session = await createSession(opts.model, { threads: opts.threads });
  const batchSize = opts.batch ?? 16;
  const logits: Float32Array[] = [];
  const embeddings: Float32Array[] = [];
  const kept: LabelledImage[] = [];
  let widths = { logits: 0, embedding: 0 };
  try {
    for (let start = 0; start < opts.images.length; start += batchSize) {
      const { batch, good } = await tensorBatch(opts.images.slice(start, start + batchSize), opts.spec);
      if (good.length === 0) continue;
      const [l, e] = await runOutputs(
        session,
        batch,
        [good.length, 3, opts.spec.height, opts.spec.width],
        opts.spec.name,
        ["logits", "embedding"],
      );
      if (!l || !e) throw new Error("model lacks the logits or embedding output");
      widths = { logits: l.width, embedding: e.width };
      logits.push(l.data.slice());
      embeddings.push(e.data.slice());
      kept.push(...good);
    }
  } finally {
    await session.release();
  }
  const parts = [...logits, ...embeddings].map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  await writeFile(path.join(opts.out, `${opts.name}.f32`), Buffer.concat(parts));
  await writeFile(
    path.join(opts.out, `${opts.name}.json`),
    JSON.stringify({
      n: kept.length,
      logitsWidth: widths.logits,
      embeddingWidth: widths.embedding,
      labels: kept.map((i) => i.label),
      files: kept.map((i) => i.file),
    }),
  );
}
