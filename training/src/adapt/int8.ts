import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { listImageFolder, manifestPathFor, manifestSchema } from "@garbage/inference";
import { quantizeModel, spread } from "../quantize.js";
import { int8Manifest, topOneAgreement } from "../quantize-cli.js";

/**
 * The int8 twin of a site model. Its activation ranges are calibrated on the site's own photos plus as many
 * replayed base photos: a site's light and surfaces can reach ranges the base photos never do.
 */
export async function makeSiteInt8(opts: {
  model: string;
  site: string;
  replay: string;
  threads: number;
  log: (s: string) => void;
}): Promise<string> {
  const out = opts.model.replace(/\.onnx$/i, "-int8.onnx");
  const base = manifestSchema.parse(JSON.parse(await readFile(manifestPathFor(opts.model), "utf8")));
  const site = (await listImageFolder(opts.site, base.classes)).filter((i) => i.label >= 0);
  const replay = (await listImageFolder(opts.replay, base.classes)).filter((i) => i.label >= 0);
  const images = [...spread(site, 90), ...spread(replay, Math.max(30, Math.min(90, 120 - site.length)))];
  const t0 = performance.now();
  const q = await quantizeModel({ model: opts.model, out, spec: base.input, images, threads: opts.threads });
  const manifest = await int8Manifest(base, out, q.images, "the site's photos and replayed base photos");
  await writeFile(manifestPathFor(out), `${JSON.stringify(manifest, null, 2)}\n`);
  const agreement = await topOneAgreement(opts.model, out, opts.site, base.classes, opts.threads);
  manifest.quantization = {
    ...(manifest.quantization as Record<string, unknown>),
    site: { top1Agreement: agreement.rate, images: agreement.n },
  };
  await writeFile(manifestPathFor(out), `${JSON.stringify(manifest, null, 2)}\n`);
  opts.log(
    `int8: ${q.tensors} activation ranges from ${q.images} photos in ${((performance.now() - t0) / 1000).toFixed(0)} s; top-1 agreement with the float model ${(agreement.rate * 100).toFixed(1)} % of ${agreement.n} site photos (${path.basename(out)})`,
  );
  return out;
}
