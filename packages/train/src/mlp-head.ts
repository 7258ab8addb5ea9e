import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import type { DenseLayer } from "@garbage/convert";
import { logitsOf } from "./head-selection.js";
import { runPython } from "./phase2.js";
import type { Dataset, Head } from "./softmax-regression.js";

const SCRIPT = path.resolve(import.meta.dirname, "../python/mlp_head.py");

export interface MlpHead {
  first: DenseLayer;
  second: DenseLayer;
  report: { settings: Record<string, unknown>; valAccuracy: number; minutes: number };
}

/** Trains the residual ReLU branch (mlp_head.py, PyTorch) on standardised features. */
export async function fitMlpHead(
  train: Dataset,
  val: Dataset,
  o: { dir: string; seed: number; threads: number; args?: string[] },
): Promise<MlpHead> {
  await mkdir(o.dir, { recursive: true });
  const file = (name: string) => path.join(o.dir, name);
  const inputs = {
    "--x-train": [file("mlp-x-train.f32"), train.x],
    "--y-train": [file("mlp-y-train.i32"), train.y],
    "--x-val": [file("mlp-x-val.f32"), val.x],
    "--y-val": [file("mlp-y-val.i32"), val.y],
  } as const;
  const files = Object.values(inputs).map(([f]) => f);
  for (const [f, a] of Object.values(inputs))
    await writeFile(f, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
  const out = file("mlp-head.f32");
  const args = [
    SCRIPT,
    ...Object.entries(inputs).flatMap(([flag, [f]]) => [flag, f]),
    ...["--dim", String(train.d), "--classes", String(train.k), "--out", out],
    ...["--seed", String(o.seed), "--threads", String(o.threads), ...(o.args ?? [])],
  ];
  await runPython(args);
  // The inputs are large (150 MB for the shipped recipe) and written afresh each run.
  await Promise.all(files.map((f) => rm(f, { force: true })));
  const report = JSON.parse(await readFile(`${out}.json`, "utf8")) as MlpHead["report"];
  const buf = await readFile(out);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  const hidden = Number(report.settings.hidden);
  const { d, k } = train;
  if (all.length !== hidden * d + hidden + k * hidden + k)
    throw new Error(
      `mlp_head.py wrote ${all.length} values; expected ${hidden}x${d} + ${hidden} + ${k}x${hidden} + ${k}`,
    );
  let at = 0;
  const take = (n: number) => {
    at += n;
    return Float32Array.from(all.subarray(at - n, at));
  };
  const first = { weight: take(hidden * d), bias: take(hidden) };
  const second = { weight: take(k * hidden), bias: take(k) };
  return { first, second, report };
}

/** linear(x) + second(relu(first(x))) for row-major x [n, d]: the exported head, evaluated in TypeScript. */
export function residualLogits(
  linear: Head,
  mlp: Pick<MlpHead, "first" | "second">,
  x: Float32Array,
  n: number,
  d: number,
) {
  const hidden = mlp.first.bias.length;
  const h = Float32Array.from(logitsOf(mlp.first, x, n, d), (v) => Math.max(v, 0));
  const branch = logitsOf(mlp.second, h, n, hidden);
  return logitsOf(linear, x, n, d).map((v, i) => v + (branch[i] as number));
}
