import { existsSync } from "node:fs";
import path from "node:path";
import { serveStatic } from "@hono/node-server/serve-static";
import { Hono, type MiddlewareHandler } from "hono";
import { ApiError } from "../errors";
import type { AppEnv } from "../types";

// The UI loads only its own scripts and styles and talks only to this API; images are blob: URLs. Chart.js
// and Preact set styles through the CSSOM, which style-src does not govern, so no 'unsafe-inline' for scripts.
const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "img-src 'self' blob: data:",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join("; ");

// Scalar's reference styles itself inline and shows data: images; it may not reach any other origin. Its
// bundled zod probes for eval with `new Function("")` in a try/catch and falls back: the page works without.
const DOCS_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "img-src 'self' blob: data:",
  "font-src 'self' data:",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Pages for people (the UI, the API reference, the queue view), not API endpoints: outside /openapi.json. */
export const isPagePath = (p: string) => /^\/($|docs$|assets\/|queues($|\/))/.test(p);

/**
 * The web UI (apps/web/dist, built by scripts/build-web.mjs): `/` the app, `/docs` the API reference for
 * /openapi.json, `/assets/*` their files. Public like /healthz: the bundle holds no data; every /v1 call it
 * makes carries the key the person typed.
 */
export function webRoutes(webDir: string | null | undefined) {
  const app = new Hono<AppEnv>();
  const built = webDir ? existsSync(path.join(webDir, "index.html")) : false;
  if (!webDir || !built) {
    app.on(["GET", "HEAD"], ["/", "/docs", "/assets/*"], () => {
      throw new ApiError(
        503,
        "ui_not_built",
        "The web UI is not built: run `npm run build` (scripts/build-web.mjs)",
      );
    });
    return app;
  }
  app.use("/assets/*", async (c, next) => {
    await next();
    if (c.res.status !== 200) return;
    // Chunk names carry a content hash; the entry files and Scalar keep their names, so they revalidate.
    c.header(
      "Cache-Control",
      c.req.path.startsWith("/assets/chunks/") ? "public, max-age=31536000, immutable" : "no-cache",
    );
    c.header("X-Content-Type-Options", "nosniff");
  });
  app.use("/assets/*", serveStatic({ root: webDir, precompressed: true }));
  const headers =
    (csp: string): MiddlewareHandler<AppEnv> =>
    async (c, next) => {
      await next();
      if (c.res.status !== 200) return;
      c.header("Cache-Control", "no-cache");
      c.header("X-Content-Type-Options", "nosniff");
      c.header("Referrer-Policy", "no-referrer");
      c.header("Content-Security-Policy", csp);
    };
  const page = (file: string) => serveStatic<AppEnv>({ root: webDir, path: file, precompressed: true });
  app.get("/", headers(UI_CSP), page("index.html"));
  app.get("/docs", headers(DOCS_CSP), page("docs.html"));
  return app;
}
