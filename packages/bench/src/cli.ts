import { loadClassifier } from "@garbage/inference";
import { photoSet } from "./images.js";
import type { Measurement, SuiteContext } from "./report.js";
import { withPeakRss } from "./rss.js";
import { percentiles } from "./stats.js";

export const CLI_BATCH = 16;
/** Files per classify() call: several chunks of 16, so the next chunk decodes while one runs, as in the CLI. */
const FILES_PER_CALL = 4 * CLI_BATCH;

/**
 * What `npm run -s garbage -- classify <dir>` does after it starts: loadClassifier with maxBatch 16, then
 * classify(files), which decodes a chunk of 16 while the previous one runs. Latency: time per chunk of 16.
 */
export async function cliSuite(ctx: SuiteContext): Promise<Measurement[]> {
  const set = await photoSet(ctx.generated, ctx.log);
  ctx.log(`  cli ${ctx.model.label}: ${set.name}, classify in batches of ${CLI_BATCH}`);
  const { result, peakRssMiB } = await withPeakRss(async () => {
    const loadStart = performance.now();
    const clf = await loadClassifier({ model: ctx.model.path, threads: ctx.threads, maxBatch: CLI_BATCH });
    const loadSeconds = (performance.now() - loadStart) / 1000;
    try {
      let cursor = 0;
      const nextFiles = () =>
        Array.from({ length: FILES_PER_CALL }, () => set.files[cursor++ % set.files.length] as string);
      await clf.classify(nextFiles().slice(0, CLI_BATCH)); // warm-up
      const chunkMs: number[] = [];
      let images = 0;
      let failed = 0;
      const start = performance.now();
      do {
        let last = performance.now();
        const outcomes = await clf.classify(nextFiles(), {
          onProgress: () => {
            const now = performance.now();
            chunkMs.push(now - last);
            last = now;
          },
        });
        images += outcomes.length;
        failed += outcomes.filter((o) => !o.ok).length;
      } while (performance.now() - start < ctx.budgetMs);
      const seconds = (performance.now() - start) / 1000;
      return { images, seconds, chunkMs, failed, loadSeconds };
    } finally {
      await clf.close();
    }
  });
  return [
    {
      suite: "cli",
      case: `classify ${set.name}, batch ${CLI_BATCH}`,
      model: ctx.model.label,
      imagesPerSecond: result.images / result.seconds,
      latencyMs: percentiles(result.chunkMs),
      latencyUnit: `batch of ${CLI_BATCH}`,
      peakRssMiB,
      extra: { threads: ctx.threads, loadSeconds: result.loadSeconds, failed: result.failed },
    },
  ];
}
