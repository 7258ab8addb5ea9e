/**
 * npm run adapt: a site's model from its photos, written as a complete served model.
 *   1. the site's photos (--data <root>/<class>/<image>, or --site S from Postgres and storage), decoded by
 *      sharp and upright, into a work folder
 *   2. adapt.py: the last stage and head of the base model fine-tuned on them with replayed base photos;
 *      k-fold cross-validation for out-of-fold predictions
 *   3. adapt_finish.py: ONNX export, temperature and review thresholds from the out-of-fold predictions,
 *      reference embeddings holding the site's photos
 *   4. the manifest (site block, cross-validated metrics, the base it came from), the int8 twin, and
 *      `garbage eval` of every --eval folder through the served path
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { type ModelManifest, manifestPathFor, sha256File } from "@garbage/inference";
import { REPO_ROOT } from "../fetch-resnet.js";
import { evalModel } from "../measure.js";
import { runPython, torchAvailable } from "../python.js";
import { makeSiteInt8 } from "./int8.js";
import { parseAdaptArgs, resolveBase } from "./options.js";
import { prepareFolder, prepareSite, type SiteData } from "./site-data.js";

const log = (s: string) => process.stderr.write(`[adapt] ${s}\n`);
const t0 = performance.now();
const seconds = () => Math.round((performance.now() - t0) / 1000);

async function main(): Promise<number> {
  const o = parseAdaptArgs(process.argv.slice(2));
  if (!torchAvailable()) {
    log(
      "needs Debian's python3-torch python3-onnx python3-scipy python3-pil and libopenblas0-pthread (README)",
    );
    return 1;
  }
  const base = await resolveBase(o.base);
  const classes = base.manifest.classes;
  const work = await mkdtemp(path.join(tmpdir(), "garbage-adapt-"));
  try {
    const siteDir = path.join(work, "site");
    let data: SiteData;
    if (o.site) {
      if (!process.env.DATABASE_URL)
        throw new Error("--site needs DATABASE_URL (and STORAGE_URL) like the API");
      data = await prepareSite(o.site, classes, siteDir, {
        databaseUrl: process.env.DATABASE_URL,
        storageUrl: process.env.STORAGE_URL || pathToFileURL(path.join(REPO_ROOT, "data/images")).href,
      });
    } else {
      data = await prepareFolder(o.data as string, classes, siteDir);
    }
    for (const s of data.skipped) log(`skipped ${s}: not a decodable image`);
    if (data.images < 2) throw new Error(`${data.images} usable photos: adapting needs at least 2`);
    log(
      `${data.images} photos (${JSON.stringify(data.perClass)}) from ${o.site ? `site ${o.site}` : o.data}; base ${base.label} (${seconds()} s)`,
    );

    await runPython("adapt.py", [
      "--base",
      base.float,
      "--classes",
      classes.join(","),
      "--data",
      siteDir,
      "--replay",
      o.replay,
      "--out",
      work,
      "--epochs",
      String(o.epochs),
      "--seed",
      String(o.seed),
      "--views",
      String(o.views),
      "--replay-images",
      String(o.replayImages),
      ...(o.steps ? ["--steps", String(o.steps)] : []),
      "--cv-folds",
      String(data.images >= 6 ? o.cvFolds : 0),
      "--threads",
      String(o.threads),
    ]);
    await mkdir(path.dirname(o.out), { recursive: true });
    const stem = o.out.replace(/\.onnx$/i, "");
    const refFile = `${stem}.ref.bin`;
    const calibFile = path.join(work, "calibration.json");
    await runPython("adapt_finish.py", [
      "--work",
      work,
      "--classes",
      classes.join(","),
      "--onnx",
      o.out,
      "--ref",
      refFile,
      "--out-json",
      calibFile,
      "--base-temperature",
      String(base.manifest.temperature),
      "--target",
      String(o.target),
      "--size",
      String(base.manifest.input.width),
    ]);
    const calib = JSON.parse(await readFile(calibFile, "utf8"));
    const trained = JSON.parse(await readFile(path.join(work, "adapt.json"), "utf8"));
    const now = new Date();
    const metrics: ModelManifest["metrics"] = [];
    if (calib.crossValidation) {
      const { folds: k, ...cv } = calib.crossValidation;
      metrics.push({ ...cv, dataset: `site photos (${k}-fold cross-validation, out-of-fold)` });
    }
    const manifest: ModelManifest = {
      name: path.basename(stem),
      version: now.toISOString().replace(/\.\d+Z$/, "Z"),
      file: path.basename(o.out),
      sha256: await sha256File(o.out),
      classes,
      input: base.manifest.input,
      output: { name: "logits", kind: "logits", embedding: "embedding" },
      temperature: calib.temperature,
      metrics,
      review: calib.review,
      site: {
        sites: o.site ? [o.site] : o.sites,
        images: data.images,
        perClass: data.perClass,
        source: o.site ? `reviews of site ${o.site}` : path.resolve(o.data as string),
        dataUntil: data.dataUntil,
      },
      training: {
        recipe: "npm run adapt (training/python/adapt.py, docs/model.md)",
        base: { name: base.manifest.name, version: base.manifest.version, sha256: base.manifest.sha256 },
        replay: path.relative(REPO_ROOT, o.replay),
        replayAccuracy: calib.replayAccuracy,
        ...trained,
        files: undefined,
      },
    };
    const manifestPath = manifestPathFor(o.out);
    await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    const cv = calib.crossValidation;
    if (cv) {
      log(
        `cross-validated accuracy ${pct(cv.accuracy)} (base model ${pct(cv.baseAccuracy)}) on ${cv.n} photos; unflagged part ${cv.review.unflaggedAccuracy === null ? "-" : pct(cv.review.unflaggedAccuracy)} at ${pct(cv.review.flaggedRate)} flagged`,
      );
    }
    for (const dir of o.evals) {
      const m = await evalModel(o.out, dir, o.threads);
      const { riskCoverage: _c, unreadableFiles: _u, model: _m, ...kept } = m;
      manifest.metrics.push({ ...kept, dataset: path.resolve(dir) } as ModelManifest["metrics"][number]);
      log(`eval ${dir}: accuracy ${pct(m.accuracy)}, flagged ${pct(m.review.flaggedRate)} (${seconds()} s)`);
    }
    await writeFile(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
    if (o.int8) {
      const int8 = await makeSiteInt8({
        model: o.out,
        site: siteDir,
        replay: o.replay,
        threads: o.threads,
        log,
      });
      log(`wrote ${int8}`);
    }
    log(`wrote ${o.out}, ${manifestPath} and ${refFile} in ${seconds()} s`);
    return 0;
  } finally {
    if (!o.keepWork) await rm(work, { recursive: true, force: true });
    else log(`work folder kept: ${work}`);
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const usage = (err as { code?: string }).code === "usage";
    log(err instanceof Error ? err.message : String(err));
    process.exitCode = usage ? 2 : 1;
  },
);
