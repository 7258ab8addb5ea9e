import { decodeImage, manifestPathFor, readManifest, tensorSize, writeTensor } from "@garbage/inference";
import { type ImageSet, TRASHNET_VAL, trashnetVal } from "./images.js";
import type { Measurement, SuiteContext } from "./report.js";
import { withPeakRss } from "./rss.js";
import { cycle, percentiles, pool } from "./stats.js";

/** Images in flight for the throughput half, as the classify path decodes a chunk of 16 at once. */
export const PREPROCESS_CONCURRENCY = 16;

/**
 * decode + resize + tensor (file read included) for TrashNet's 512x384 JPEGs and generated 1920x1080 and
 * 4000x3000 ones. Half the budget runs one image at a time (the latency of one image), half keeps 16 in
 * flight (images/s, as sharp's threads allow). Independent of the model's weights: measured once per run.
 */
export async function preprocessSuite(ctx: SuiteContext): Promise<Measurement[]> {
  const spec = (await readManifest(manifestPathFor(ctx.model.path))).input;
  const sets: ImageSet[] = [];
  const trashnet = await trashnetVal();
  if (trashnet) sets.push({ ...trashnet, files: trashnet.files.slice(0, 256) });
  else ctx.log(`  preprocess: skipping 512x384 TrashNet val, no images at ${TRASHNET_VAL}`);
  ctx.log("  preprocess: generating 1920x1080 and 4000x3000 JPEGs");
  sets.push(await ctx.generated.set(1920, 1080, 4), await ctx.generated.set(4000, 3000, 2));

  const out: Measurement[] = [];
  for (const set of sets) {
    ctx.log(`  preprocess: ${set.name}`);
    const next = cycle(set.files);
    const buffers = Array.from({ length: PREPROCESS_CONCURRENCY }, () => new Float32Array(tensorSize(spec)));
    const one = async (slot: number) => {
      const pixels = await decodeImage(next(), spec);
      writeTensor(pixels, spec, buffers[slot] as Float32Array);
      return 1;
    };
    const { result, peakRssMiB } = await withPeakRss(async () => {
      const single = await pool(1, ctx.budgetMs / 2, one);
      const many = await pool(PREPROCESS_CONCURRENCY, ctx.budgetMs / 2, one, 0);
      return { single, many };
    });
    out.push({
      suite: "preprocess",
      case: set.name,
      model: null,
      imagesPerSecond: result.many.imagesPerSecond,
      latencyMs: percentiles(result.single.latencies),
      latencyUnit: "image",
      peakRssMiB,
      extra: {
        serialImagesPerSecond: result.single.imagesPerSecond,
        resize: `${spec.resize}:${spec.width}x${spec.height}`,
      },
    });
  }
  return out;
}
