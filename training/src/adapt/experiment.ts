/**
 * npm run site-experiment: real photos treated as a site. Each set is split in halves by a hash of the file
 * name (as the owner's check splits its sets); `npm run adapt` trains on one half, `garbage eval` measures
 * the other half and TrashNet `val` with the base model and with each seed's adapted model.
 *
 *   npm run site-experiment -- [--sets tidy,muell] [--seeds 0,1,2] [--swap] [--out report.json]
 *
 * Sets: `tidy` (31 street photos, ../shared/datasets/tidy) and `muell` (the 94 Müll-Roboter photos that
 * the base model never trained on). --swap also trains on the second half and tests on the first.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT } from "../fetch-resnet.js";
import { evalModel } from "../measure.js";

const shared = path.join(REPO_ROOT, "../shared/datasets");
const { values } = parseArgs({
  options: {
    sets: { type: "string", default: "tidy,muell" },
    seeds: { type: "string", default: "0,1,2" },
    swap: { type: "boolean", default: false },
    out: { type: "string" },
    threads: { type: "string", default: "2" },
  },
});
const log = (s: string) => process.stderr.write(`[site-experiment] ${s}\n`);
const half = (name: string) =>
  Number.parseInt(createHash("sha256").update(name).digest("hex").slice(0, 8), 16) % 2;
// The base recipe's own hold-out rule (training/python/data.py muell_heldout): 30 % of Müll-Roboter by hash.
const muellHeldOut = (name: string) =>
  Number.parseInt(createHash("sha256").update(name).digest("hex").slice(0, 8), 16) / 0xffffffff < 0.3;

async function split(set: string, root: string, work: string): Promise<[string, string]> {
  const dirs: [string, string] = [path.join(work, set, "a"), path.join(work, set, "b")];
  for (const cls of (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory())) {
    for (const file of (await readdir(path.join(root, cls.name))).sort()) {
      if (set === "muell" && !muellHeldOut(file)) continue;
      const dest = path.join(dirs[half(file) as 0 | 1], cls.name);
      await mkdir(dest, { recursive: true });
      await symlink(path.join(root, cls.name, file), path.join(dest, file));
    }
  }
  return dirs;
}

const threads = Number(values.threads);
const val = path.join(shared, "trashnet/val");
const baseModel = path.join(REPO_ROOT, "models/garbage-resnet50.onnx");
const work = await mkdtemp(path.join(tmpdir(), "garbage-site-experiment-"));
const rows: Record<string, unknown>[] = [];
try {
  const baseVal = await evalModel(baseModel, val, threads);
  for (const set of values.sets.split(",")) {
    const root = path.join(shared, set === "muell" ? "muell-roboter" : set);
    const [a, b] = await split(set, root, work);
    for (const [train, test] of values.swap
      ? [
          [a, b],
          [b, a],
        ]
      : [[a, b]]) {
      const baseTest = await evalModel(baseModel, test as string, threads);
      for (const seed of values.seeds.split(",")) {
        const out = path.join(work, "models", `${set}-${path.basename(train as string)}-${seed}.onnx`);
        const t0 = performance.now();
        const res = spawnSync(
          "npm",
          [
            "run",
            "-s",
            "adapt",
            "--",
            "--data",
            train as string,
            "--out",
            out,
            "--seed",
            seed,
            "--threads",
            String(threads),
          ],
          { stdio: ["ignore", "inherit", "inherit"], cwd: REPO_ROOT },
        );
        if (res.status !== 0) throw new Error(`adapt failed for ${set} seed ${seed}`);
        const minutes = (performance.now() - t0) / 60_000;
        const [fp32, int8] = [out, out.replace(/\.onnx$/, "-int8.onnx")];
        const row = {
          set,
          train: path.basename(train as string),
          testHalf: path.basename(test as string),
          seed: Number(seed),
          adaptMinutes: Number(minutes.toFixed(2)),
          baseTest: baseTest.accuracy,
          baseVal: baseVal.accuracy,
          adapted: (await evalModel(fp32, test as string, threads)).accuracy,
          testInt8: (await evalModel(int8, test as string, threads)).accuracy,
          val: (await evalModel(fp32, val, threads)).accuracy,
          n: baseTest.n,
        };
        rows.push(row);
        log(JSON.stringify(row));
      }
    }
  }
} finally {
  await rm(work, { recursive: true, force: true });
}
const pct = (x: unknown) => `${((x as number) * 100).toFixed(1)} %`;
console.log(
  "| set | train → test (photos) | seed | base | adapted fp32 | adapted int8 | TrashNet val base → adapted | adapt min |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.set} | ${r.train} → ${r.testHalf} (${r.n}) | ${r.seed} | ${pct(r.baseTest)} | ${pct(r.adapted)} | ${pct(r.testInt8)} | ${pct(r.baseVal)} → ${pct(r.val)} | ${r.adaptMinutes} |`,
  );
}
if (values.out)
  await writeFile(
    path.resolve(process.env.INIT_CWD ?? ".", values.out),
    `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`,
  );
