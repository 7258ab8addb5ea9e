import { createSession, manifestPathFor, readManifest, runBatch, tensorSize } from "@garbage/inference";
import type { Measurement, SuiteContext } from "./report.js";
import { withPeakRss } from "./rss.js";
import { percentiles, pool } from "./stats.js";

export const INFERENCE_BATCHES = [1, 8, 32] as const;

/** session.run alone, on synthetic tensors of the manifest's input size, at batch 1, 8 and 32. */
export async function inferenceSuite(ctx: SuiteContext): Promise<Measurement[]> {
  const { model, threads } = ctx;
  const spec = (await readManifest(manifestPathFor(model.path))).input;
  const out: Measurement[] = [];
  const { result: session, peakRssMiB: loadRss } = await withPeakRss(() =>
    createSession(model.path, { threads }),
  );
  try {
    for (const batch of INFERENCE_BATCHES) {
      const input = new Float32Array(batch * tensorSize(spec));
      let s = 12345;
      for (let i = 0; i < input.length; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        input[i] = (s >>> 8) / 2 ** 23 - 1;
      }
      const dims = [batch, 3, spec.height, spec.width] as const;
      ctx.log(`  inference ${model.label}: batch ${batch}`);
      const { result, peakRssMiB } = await withPeakRss(() =>
        pool(1, ctx.budgetMs, async () => {
          await runBatch(session, input, dims, spec.name);
          return batch;
        }),
      );
      out.push({
        suite: "inference",
        case: `session.run batch ${batch}`,
        model: model.label,
        imagesPerSecond: result.imagesPerSecond,
        latencyMs: percentiles(result.latencies),
        latencyUnit: "run",
        peakRssMiB: Math.max(peakRssMiB, loadRss),
        extra: { threads },
      });
    }
  } finally {
    await session.release();
  }
  return out;
}
