import type { Hook } from "@hono/zod-openapi";
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "./types";

/** The one error type handlers throw; `onError` turns it into `{ code, message, requestId }`. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: unknown,
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

export function createErrorHandler(log: (msg: string, err: unknown) => void): ErrorHandler<AppEnv> {
  return (err, c) => {
    if (err instanceof ApiError) {
      if (err.status >= 500) log(`${err.code}: ${err.message}`, err);
      return c.json(body(c, err.code, err.message, err.details), err.status);
    }
    if (err instanceof HTTPException) {
      const status = err.status as ContentfulStatusCode;
      return c.json(body(c, CODES[status] ?? "http_error", err.message || "request failed"), status);
    }
    log("unhandled error", err);
    // Internals stay in the log; the client gets the request id to quote.
    return c.json(body(c, "internal_error", "internal server error"), 500);
  };
}

export const notFound: NotFoundHandler<AppEnv> = (c) =>
  c.json(body(c, "not_found", `no route for ${c.req.method} ${c.req.path}`), 404);

/** Shared by every OpenAPIHono router so zod failures all look alike. */
// biome-ignore lint/suspicious/noExplicitAny: the hook is shared across routes with different input types
export const validationHook: Hook<any, AppEnv, any, any> = (result) => {
  if (!result.success) {
    const issues = result.error.issues.map((i) => ({ path: i.path.join("."), message: i.message }));
    const summary = issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
    throw new ApiError(400, "validation_error", summary || "invalid request", issues);
  }
};
