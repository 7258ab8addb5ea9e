import type { Logger } from "@garbage/log";
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./types";

/**
 * One line per request, after hono's requestId middleware: the request id (the same one the response's
 * X-Request-Id header and every error body carry), method, matched route, status, duration and the API key's
 * principal id (`db:<id>` or `env:<hash prefix>`, never the key). Handlers log through `c.var.log`, a child
 * that carries the request id too. Health and metrics probes are logged at debug: they arrive every few
 * seconds and say nothing about traffic.
 */
export function requestLog(logger: Logger): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const started = performance.now();
    const log = logger.child({ requestId: c.get("requestId") });
    c.set("log", log);
    await next();
    const route = c.req.routePath;
    const fields = {
      method: c.req.method,
      route,
      path: c.req.path,
      status: c.res.status,
      durationMs: Math.round((performance.now() - started) * 10) / 10,
      principal: c.get("principal")?.id,
    };
    if (PROBES.has(c.req.path)) log.debug(fields, "request");
    else log.info(fields, "request");
  };
}

const PROBES = new Set(["/healthz", "/readyz", "/metrics"]);
