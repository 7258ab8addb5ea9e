import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { DenseLayer } from "@garbage/convert";
import { PYTHON } from "./phase2.js";
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
  const bytes = (a: Float32Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  await writeFile(file("mlp-x-train.f32"), bytes(train.x));
  await writeFile(file("mlp-y-train.i32"), bytes(train.y));
  await writeFile(file("mlp-x-val.f32"), bytes(val.x));
  await writeFile(file("mlp-y-val.i32"), bytes(val.y));
  const out = file("mlp-head.f32");
  const args = [
    SCRIPT,
    ...["--x-train", file("mlp-x-train.f32"), "--y-train", file("mlp-y-train.i32")],
    ...["--x-val", file("mlp-x-val.f32"), "--y-val", file("mlp-y-val.i32")],
    ...["--dim", String(train.d), "--classes", String(train.k), "--out", out],
    ...["--seed", String(o.seed), "--threads", String(o.threads), ...(o.args ?? [])],
  ];
  await new Promise<void>((resolve, reject) => {
    const p = spawn(PYTHON, args, { stdio: ["ignore", "inherit", "inherit"] });
    p.on("error", reject);
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`mlp_head.py exited with ${code}`))));
  });
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
  const k = linear.bias.length;
  const hidden = mlp.first.bias.length;
  const out = new Float64Array(n * k);
  const h = new Float64Array(hidden);
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * d, (i + 1) * d);
    for (let u = 0; u < hidden; u++) {
      let s = mlp.first.bias[u] as number;
      const w = mlp.first.weight.subarray(u * d, (u + 1) * d);
      for (let j = 0; j < d; j++) s += (w[j] as number) * (row[j] as number);
      h[u] = Math.max(s, 0);
    }
    for (let c = 0; c < k; c++) {
      let s = (linear.bias[c] as number) + (mlp.second.bias[c] as number);
      for (let j = 0; j < d; j++) s += (linear.weight[c * d + j] as number) * (row[j] as number);
      for (let u = 0; u < hidden; u++) s += (mlp.second.weight[c * hidden + u] as number) * (h[u] as number);
      out[i * k + c] = s;
    }
  }
  return out;
}
