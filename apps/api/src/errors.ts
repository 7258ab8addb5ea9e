import type { Hook } from "@hono/zod-openapi";
import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv, Logger } from "./types";

/** The one error type handlers throw; `onError` turns it into `{ code, message, requestId }`. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Sent as Retry-After: the request may succeed unchanged after this many seconds. */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

function body(c: Context<AppEnv>, code: string, message: string, details?: unknown) {
  return {
    code,
    message,
    requestId: c.get("requestId") ?? "",
    ...(details === undefined ? {} : { details }),
  };
}

const CODES: Partial<Record<number, string>> = {
  400: "bad_request",
  401: "unauthorized",
  404: "not_found",
  413: "payload_too_large",
  415: "unsupported_media_type",
};

// Socket errors and the Postgres classes that mean "not reachable now" (admin shutdown, cannot connect now,
// connection exceptions), as pg, ioredis and BullMQ report them.
const OUTAGE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EPIPE",
  "57P01",
  "57P02",
  "57P03",
  "08000",
  "08001",
  "08003",
  "08004",
  "08006",
]);
// ioredis without an offline queue (the API's connection) refuses commands while disconnected with
// "Stream isn't writeable and enableOfflineQueue options is false".
const OUTAGE_MESSAGES =
  /Connection terminated|timeout exceeded when trying to connect|Connection is closed|MaxRetriesPerRequest|Redis is not reachable|Stream isn't writeable/i;

/** True when err (or what it wraps) says a database or Redis is unreachable, not that the request is wrong. */
export function isOutage(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== "object" || depth > 5) return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  if (typeof e.code === "string" && OUTAGE_CODES.has(e.code)) return true;
  if (typeof e.message === "string" && OUTAGE_MESSAGES.test(e.message)) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => isOutage(x, depth + 1))) return true;
  return isOutage(e.cause, depth + 1);
}

/** Seconds a client should wait before retrying a request that met an outage. */
export const OUTAGE_RETRY_AFTER_S = 5;

/**
 * Every 503 says when to come back, whoever produced it (readiness, the web UI, Bull Board, a handler's own
 * c.json): a client or proxy that retries at once only deepens an outage.
 */
export const retryAfterOn503: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  if (c.res.status === 503 && !c.res.headers.has("Retry-After")) {
    c.header("Retry-After", String(OUTAGE_RETRY_AFTER_S));
  }
};

/** Errors are logged through the request's logger (request-log.ts), so each line carries its request id. */
export function createErrorHandler(fallback: Logger): ErrorHandler<AppEnv> {
  return (err, c) => {
    const log = c.get("log") ?? fallback;
    if (isOutage(err)) {
      log.warn({ err }, "dependency unreachable");
      c.header("Retry-After", String(OUTAGE_RETRY_AFTER_S));
      return c.json(
        body(c, "service_unavailable", "a dependency (database or queue) is unreachable; retry later"),
        503,
      );
    }
    if (err instanceof ApiError) {
      if (err.status >= 500 && err.retryAfterS === undefined) log.error({ err, code: err.code }, err.message);
      if (err.retryAfterS !== undefined) c.header("Retry-After", String(err.retryAfterS));
      return c.json(body(c, err.code, err.message, err.details), err.status);
    }
    if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode;
      return c.json(body(c, CODES[status] ?? "http_error", err.message || "request failed"), status);
    }
    log.error({ err }, "unhandled error");
    // Internals stay in the log; the client gets the request id to quote.
    return c.json(body(c, "internal_error", "internal server error"), 500);
  };
}

export const notFound: NotFoundHandler<AppEnv> = (c) =>
  c.json(body(c, "not_found", `no route for ${c.req.method} ${c.req.path}`), 404);

/** Shared by every OpenAPIHono router so zod failures all look alike. */
// biome-ignore lint/suspicious/noExplicitAny: the hook is shared across routes with different input types
export const validationHook: Hook<any, AppEnv, any, any> = (result) => {
  if (!result.success) throw validationError(result.error);
};

/** The 400 for input zod refused, whether a route's schema or a handler's own parse found it. */
export function validationError(error: {
  issues: readonly { path: PropertyKey[]; message: string }[];
}): ApiError {
  const issues = error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message }));
  const summary = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
  return new ApiError(400, "validation_error", summary || "invalid request", issues);
}
