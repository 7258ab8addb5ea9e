import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { HonoAdapter } from "@bull-board/hono";
import { serveStatic } from "@hono/node-server/serve-static";
import { Hono } from "hono";
import { apiKeyAuth } from "../auth";
import { ApiError } from "../errors";
import { principalOf } from "../principal";
import type { AppEnv, RouteDeps } from "../types";

export const QUEUES_PATH = "/queues";

const BOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * Bull Board on the classify queue, read-only (no retries, removals or cleans from a browser): jobs waiting,
 * active, failed, with their data. Jobs name every site's batches, so it takes a key for every site; the
 * browser opens it directly, so the key is the password of HTTP Basic credentials.
 */
export function queuesRoutes(deps: RouteDeps) {
  const board = new HonoAdapter(serveStatic);
  createBullBoard({
    queues: [new BullMQAdapter(deps.queue, { readOnlyMode: true, allowRetries: false })],
    serverAdapter: board,
    options: { uiConfig: { boardTitle: "garbage-sort queue" } },
  });
  board.setBasePath(QUEUES_PATH);

  const app = new Hono<AppEnv>();
  const auth = apiKeyAuth({
    envKeys: deps.config.apiKeys,
    db: deps.db,
    cacheMs: deps.config.apiKeyCacheMs,
    scheme: "basic",
  });
  for (const p of [QUEUES_PATH, `${QUEUES_PATH}/*`]) {
    app.use(p, auth, async (c, next) => {
      // Read-only twice over: the adapter refuses changes, and nothing but reads gets past here.
      if (c.req.method !== "GET" && c.req.method !== "HEAD") {
        throw new ApiError(405, "read_only", "the queue view is read-only");
      }
      if (principalOf(c).sites !== null) {
        throw new ApiError(
          403,
          "forbidden_site",
          "the queue view shows every site's jobs: use a key for every site",
        );
      }
      await next();
    });
  }
  // Bull Board's page links Google Fonts; these machines have no internet and the view must not call out.
  app.get(QUEUES_PATH, async (c, next) => {
    await next();
    if (!c.res.headers.get("content-type")?.startsWith("text/html")) return;
    const html = (await c.res.text()).replace(/<link[^>]+fonts\.googleapis\.com[^>]*>/g, "");
    c.res = new Response(html, { status: c.res.status, headers: c.res.headers });
    c.header("Content-Security-Policy", BOARD_CSP);
  });
  app.route(QUEUES_PATH, board.registerPlugin());
  return app;
}
