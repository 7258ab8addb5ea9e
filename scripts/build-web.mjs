// Bundles the web UI (apps/web/src, Preact + Chart.js) and the API reference page (Scalar's standalone build)
// from node_modules into apps/web/dist; the API serves that folder at /, /assets/* and /docs. Nothing is ever
// loaded from a CDN: the machines that run this have no internet.
//
// Layout of apps/web/dist:
//   index.html, docs.html          the two pages (no inline scripts, so the UI can run under a strict CSP)
//   assets/main.js, main.css       the UI's entry; Chart.js is a lazily loaded chunk under assets/chunks/
//   assets/scalar.js, docs.js      the API reference and its two-line start script
//   *.gz                           gzip copies that @hono/node-server's serveStatic sends when accepted
import { copyFile, mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import * as esbuild from "esbuild";

const ROOT = path.resolve(fileURLToPath(new URL(".", import.meta.url)), "..");
const WEB = path.join(ROOT, "apps/web");
const gz = promisify(gzip);

const page = (title, body, head = "") => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title}</title>
${head}
</head>
<body>
${body}
</body>
</html>
`;

async function* files(dir) {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* files(p);
    else yield p;
  }
}

/** Builds the UI into `outdir` (default apps/web/dist); returns the main bundle's size in bytes. */
export async function buildWeb({ outdir = path.join(WEB, "dist"), minify = true } = {}) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(path.join(outdir, "assets"), { recursive: true });
  await esbuild.build({
    entryPoints: [path.join(WEB, "src/main.tsx")],
    outdir: path.join(outdir, "assets"),
    entryNames: "[name]",
    chunkNames: "chunks/[name]-[hash]",
    bundle: true,
    splitting: true,
    format: "esm",
    platform: "browser",
    target: ["es2022", "chrome110", "firefox110", "safari16"],
    jsx: "automatic",
    jsxImportSource: "preact",
    minify,
    sourcemap: "linked",
    define: { "process.env.NODE_ENV": '"production"' },
    logLevel: "warning",
  });
  const require = createRequire(path.join(WEB, "package.json"));
  const scalar = path.join(path.dirname(require.resolve("@scalar/api-reference")), "browser/standalone.js");
  await copyFile(scalar, path.join(outdir, "assets/scalar.js"));
  // Scalar would otherwise reach out: its fonts CDN, and its "agent" (proxy.scalar.com) and telemetry. The
  // page's CSP (apps/api/src/routes/web.ts) also keeps it to this origin.
  const scalarConfig = {
    url: "/openapi.json",
    withDefaultFonts: false,
    telemetry: false,
    agent: { disabled: true },
    showDeveloperTools: "never",
  };
  await writeFile(
    path.join(outdir, "assets/docs.js"),
    `Scalar.createApiReference("#app", ${JSON.stringify(scalarConfig)});\n`,
  );
  await writeFile(
    path.join(outdir, "index.html"),
    page(
      "garbage-sort",
      '<div id="app"><p>Loading…</p></div>\n<noscript>The garbage-sort UI needs JavaScript.</noscript>',
      '<link rel="stylesheet" href="/assets/main.css">\n<script type="module" src="/assets/main.js"></script>',
    ),
  );
  await writeFile(
    path.join(outdir, "docs.html"),
    page(
      "garbage-sort API reference",
      '<div id="app"></div>\n<script src="/assets/scalar.js"></script>\n<script src="/assets/docs.js"></script>',
    ),
  );
  for await (const file of files(outdir)) {
    if (!/\.(js|css|html|map)$/.test(file) || (await stat(file)).size < 1024) continue;
    await writeFile(`${file}.gz`, await gz(await readFile(file), { level: 9 }));
  }
  return (await stat(path.join(outdir, "assets/main.js"))).size;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const size = await buildWeb();
  console.log(
    `built apps/web/dist (main.js ${Math.round(size / 1024)} KiB) in ${Math.round(performance.now() - started)} ms`,
  );
}
