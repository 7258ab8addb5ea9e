import path from "node:path";
import { parseArgs } from "node:util";
import { listImages } from "@garbage/inference";
import { commonArgs, intOption, openClassifier, UsageError, userPath } from "./options.js";
import { createProgress } from "./progress.js";

export const classifyHelp = `usage: garbage classify <files or folders...> [--top 3] [--json] [--model path]
           [--threads n] [--batch 16] [--provider cpu|cuda] [--tta] [--quiet]

Classifies images (folders are searched recursively), prints the top-k per image and a per-class summary.
With --json, stdout holds exactly one JSON array.`;

export async function classifyCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...commonArgs, top: { type: "string" } },
  });
  if (values.help) {
    console.log(classifyHelp);
    return 0;
  }
  if (positionals.length === 0) throw new UsageError(`no images given\n\n${classifyHelp}`);
  const top = intOption(values.top, "top", 3);
  let files: string[];
  try {
    files = await listImages(positionals.map(userPath));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const classifier = await openClassifier(values);
  const started = performance.now();
  const progress = createProgress(files.length, "classify", values.quiet);
  const outcomes = await classifier.classify(files, { topK: top, onProgress: progress.update });
  progress.stop();
  const seconds = (performance.now() - started) / 1000;
  await classifier.close();

  const cwd = process.env.INIT_CWD ?? process.cwd();
  const shown = (f: string) => path.relative(cwd, f) || f;
  const counts = new Map<string, number>(classifier.classes.map((c) => [c, 0]));
  let failed = 0;
  const rows = outcomes.map((o, i) => {
    const file = shown(files[i] as string);
    if (!o.ok) {
      failed++;
      console.error(`warning: ${file}: ${o.error.message} (${o.error.code})`);
      return { file, label: null, confidence: null, top: [], needsReview: null, error: o.error };
    }
    counts.set(o.label, (counts.get(o.label) ?? 0) + 1);
    return {
      file,
      label: o.label,
      confidence: o.confidence,
      top: o.top,
      needsReview: o.needsReview,
      review: o.review,
    };
  });
  const ok = outcomes.length - failed;
  if (values.json) {
    process.stdout.write(`${JSON.stringify(rows)}\n`);
  } else {
    const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
    for (const r of rows) {
      if (r.label === null) console.log(`${r.file}\tFAILED\t${r.error?.code}`);
      else
        console.log(
          `${r.file}\t${r.top.map((t) => `${t.label} ${pct(t.confidence)}`).join("\t")}${r.needsReview ? "\tNEEDS REVIEW" : ""}`,
        );
    }
    const review = rows.filter((r) => r.needsReview).length;
    console.log(`\n${ok} classified, ${failed} failed, ${review} need review`);
    // A 1000-class ImageNet model would print a page of zeros: list every class only for small label sets.
    for (const [label, n] of counts)
      if (n > 0 || counts.size <= 20)
        console.log(`  ${label.padEnd(12)} ${String(n).padStart(6)}  ${ok ? pct(n / ok) : "-"}`);
  }
  console.error(
    `${files.length} images in ${seconds.toFixed(1)} s (${(files.length / seconds).toFixed(1)} images/s)`,
  );
  return 0;
}
