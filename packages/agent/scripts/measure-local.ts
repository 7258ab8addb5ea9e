/**
 * Local mode on one core: the agent (`garbage agent --local`, int8 model, --threads 1) pinned to one CPU with
 * taskset classifies N TrashNet val photos dropped into its folder, while a real API takes the results.
 * Prints images per second (first photo spooled to last classified) and the agent's peak RSS (VmHWM, the
 * model thread included). Needs Postgres and Redis like the tests.
 *
 *   npx tsx packages/agent/scripts/measure-local.ts [--images 100] [--data ../shared/datasets/trashnet/val]
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { kill, ROOT, start, startStack } from "../test/processes";

const { values } = parseArgs({ options: { images: { type: "string" }, data: { type: "string" } } });
const N = Number(values.images ?? 100);
const DATA = path.resolve(values.data ?? path.join(ROOT, "../shared/datasets/trashnet/val"));

const dir = await mkdtemp(path.join(tmpdir(), "agent-measure-"));
const stack = await startStack(dir, null);
const inbox = path.join(dir, "inbox");
await mkdir(inbox);
const photos: string[] = [];
for (const cls of (await readdir(DATA)).sort()) {
  for (const f of (await readdir(path.join(DATA, cls))).sort()) photos.push(path.join(DATA, cls, f));
}
// Every class, evenly: every k-th photo of the sorted list.
const step = Math.max(1, Math.floor(photos.length / N));
const chosen = photos.filter((_, i) => i % step === 0).slice(0, N);

const agent = await start(
  "agent",
  [
    "taskset",
    "-c",
    "0",
    process.execPath,
    "--import",
    "tsx",
    path.join(ROOT, "apps/cli/src/main.ts"),
    "agent",
    ...[
      "--watch",
      inbox,
      "--site",
      "measure",
      "--api",
      stack.url,
      "--local",
      "--model",
      "int8",
      "--threads",
      "1",
    ],
    ...["--spool", path.join(dir, "spool"), "--settle-ms", "200", "--metrics-port", "0"],
  ],
  { LOG_LEVEL: "info" },
  "agent ready",
  120_000,
);
const pid = agent.child.pid as number;
const port = agent.logs.find((l) => l.msg === "agent ready")?.metricsPort as number;
const status = async (key: string) => {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(await readFile(`/proc/${pid}/status`, "utf8"));
  return Number(m?.[1] ?? 0) / 1024;
};
const idleRss = await status("VmRSS");
const classified = async () => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith("garbage_agent_classified_images_total{"))
    .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
};

for (const [i, p] of chosen.entries()) await copyFile(p, path.join(inbox, `${i}-${path.basename(p)}`));
const t0 = performance.now();
let firstAt = 0;
let done = 0;
while (done < chosen.length) {
  await new Promise((r) => setTimeout(r, 100));
  done = await classified();
  if (done > 0 && firstAt === 0) firstAt = performance.now();
}
const seconds = (performance.now() - t0) / 1000;
const result = {
  images: chosen.length,
  seconds: Number(seconds.toFixed(1)),
  imagesPerSecond: Number((chosen.length / seconds).toFixed(2)),
  idleRssMiB: Math.round(idleRss),
  peakRssMiB: Math.round(await status("VmHWM")),
  outcomes: (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())
    .split("\n")
    .filter((l) => l.startsWith("garbage_agent_classified_images_total{"))
    .join(", "),
  load: (await readFile("/proc/loadavg", "utf8")).split(" ").slice(0, 3).join(" "),
};
console.log(JSON.stringify(result));
await kill(agent, "SIGTERM");
await stack.close();
await rm(dir, { recursive: true, force: true });
