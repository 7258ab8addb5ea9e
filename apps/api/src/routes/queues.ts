import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { HonoAdapter } from "@bull-board/hono";
import { serveStatic } from "@hono/node-server/serve-static";
import { Hono } from "hono";
import { apiKeyAuth } from "../auth";
import { ApiError, OUTAGE_RETRY_AFTER_S } from "../errors";
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
  // Bull Board's own handler answers every error with a 500 of its own shape; rethrown, they reach onError,
  // which says 503 with Retry-After while Redis is down and keeps {code, message, requestId} for the rest.
  board.setErrorHandler((err) => {
    throw err;
  });

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
  // BullMQ waits for a connection that never came up (an API started while Redis was down) without a limit.
  app.use(`${QUEUES_PATH}/api/*`, async (_c, next) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ApiError(
              503,
              "queue_unavailable",
              "the queue (Redis) is not answering",
              undefined,
              OUTAGE_RETRY_AFTER_S,
            ),
          ),
        deps.config.enqueueTimeoutMs,
      );
    });
    try {
      await Promise.race([next(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  });
  // Bull Board's page links Google Fonts; these machines have no internet and the view must not call out.
  app.get(QUEUES_PATH, async (c, next) => {
    await next();
    if (!c.res.headers.get("content-type")?.startsWith("text/html")) return;
    const html = (await c.res.text()).replace(/<link[^>]+fonts\.googleapis\.com[^>]*>/g, "");
    c.res = new Response(html, { status: c.res.status, headers: c.res.headers });
    c.header("Content-Security-Policy", BOARD_CSP);
  });
  const plugin = board.registerPlugin();
  // The plugin is built by hono's CommonJS copy, whose default error handler is not ours: hono would wrap the
  // plugin's routes in it (a plain-text 500) instead of passing errors on to the app's onError.
  plugin.onError((err) => {
    throw err;
  });
  app.route(QUEUES_PATH, plugin);
  return app;
}
