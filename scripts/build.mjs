#!/usr/bin/env node
// Compiles the apps to JavaScript: `node apps/<app>/dist/<entry>.js` runs them without tsx or any dev
// dependency (the production image ships only these bundles and `npm ci --omit=dev`).
//
// What goes in a bundle: the app's own source and the internal @garbage/* packages (TypeScript source, never
// published). What stays external: every npm package (onnxruntime-node and sharp are native, pg, bullmq,
// ioredis, hono, zod, ...): they are resolved from node_modules at run time, exactly as in development.
//
// Layout of each apps/<app>/dist, and why it must stay one level below the app's folder:
//   index.js / main.js      the entry (ESM, node20)
//   inference-thread.js     the model thread (api, worker, and the cli's agent) (packages/inference/src/thread/thread.ts, bundled on its own);
//                           @garbage/inference's client starts it with new URL("./inference-thread.js",
//                           import.meta.url) when it runs from a bundle (see packages/inference/src/thread/client.ts)
//   drizzle/                the SQL migrations (api only; see packages/db/src/migrate.ts)
//   migrate.js              one-shot migration command (api only; docker-compose's `migrate` service)
// apps/worker/src/config.ts and apps/cli/src/options.ts find the repo root (models/) as "../../.." of their
// module, and dist/ is at the same depth as src/.
import { cp, rm } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { buildWeb } from "./build-web.mjs";

const ROOT = path.resolve(fileURLToPath(new URL(".", import.meta.url)), "..");
const at = (...p) => path.join(ROOT, ...p);

const THREAD = { in: at("packages/inference/src/thread/thread.ts"), out: "inference-thread" };

const apps = [
  {
    name: "api",
    entries: [
      { in: at("apps/api/src/index.ts"), out: "index" },
      { in: at("packages/db/scripts/migrate.ts"), out: "migrate" },
      THREAD,
    ],
    assets: [{ from: at("packages/db/drizzle"), to: "drizzle" }],
  },
  { name: "worker", entries: [{ in: at("apps/worker/src/index.ts"), out: "index" }, THREAD], assets: [] },
  // classify and eval run the model on the main thread; `garbage agent --local` runs it in an InferenceThread.
  // agent.js is the agent alone (the Dockerfile's `agent` image: no Postgres or storage packages needed).
  {
    name: "cli",
    entries: [
      { in: at("apps/cli/src/main.ts"), out: "main" },
      { in: at("packages/agent/src/bin.ts"), out: "agent" },
      THREAD,
    ],
    assets: [],
  },
];

/** Bundles only @garbage/* (and relative imports); every other bare import is left to node at run time. */
const externalNpmPackages = {
  name: "external-npm-packages",
  setup(build) {
    build.onResolve({ filter: /^[^./]/ }, (args) => {
      if (args.path.startsWith("@garbage/")) return undefined;
      return { path: args.path, external: true };
    });
  },
};

// "web" is the browser UI (scripts/build-web.mjs): apps/web/dist, served by the API.
const only = process.argv.slice(2);
const selected = only.length ? apps.filter((a) => only.includes(a.name)) : apps;
const web = only.length === 0 || only.includes("web");
if (only.length && selected.length + (web ? 1 : 0) !== only.length) {
  console.error(
    `unknown app in ${only.join(", ")}; known: ${[...apps.map((a) => a.name), "web"].join(", ")}`,
  );
  process.exit(2);
}

const started = performance.now();
await Promise.all([
  web ? buildWeb() : null,
  ...selected.map(async (app) => {
    const outdir = at("apps", app.name, "dist");
    await rm(outdir, { recursive: true, force: true });
    await esbuild.build({
      entryPoints: app.entries,
      outdir,
      bundle: true,
      // One file per entry, no shared chunks: the thread's bundle must not import the main bundle's chunks.
      splitting: false,
      format: "esm",
      platform: "node",
      target: "node20",
      sourcemap: "linked",
      // Stack traces keep function and class names (error names are matched on in places).
      keepNames: true,
      logLevel: "warning",
      plugins: [externalNpmPackages],
    });
    for (const asset of app.assets) await cp(asset.from, path.join(outdir, asset.to), { recursive: true });
  }),
]);
console.log(
  `built ${[...selected.map((a) => a.name), ...(web ? ["web"] : [])].map((n) => `apps/${n}/dist`).join(", ")} in ${Math.round(performance.now() - started)} ms`,
);
