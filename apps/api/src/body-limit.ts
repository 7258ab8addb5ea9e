import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { ApiError } from "./errors";
import type { AppEnv } from "./types";

/**
 * The routes that stream a large body under limits of their own (MAX_REQUEST_BYTES, MAX_FILE_BYTES,
 * MODEL_MAX_BYTES): every other body is small JSON or nothing at all.
 */
const UPLOADS: readonly { method: string; path: RegExp }[] = [
  { method: "POST", path: /^\/v1\/batches\/?$/ },
  { method: "POST", path: /^\/v1\/classify\/?$/ },
  { method: "POST", path: /^\/v1\/models\/?$/ },
  { method: "POST", path: /^\/v1\/results\/?$/ },
];

export const isUploadRoute = (method: string, path: string) =>
  UPLOADS.some((u) => u.method === method && u.path.test(path));

/**
 * BODY_MAX_BYTES for every request but the four uploads. hono's bodyLimit answers from Content-Length before
 * reading a byte, and a chunked body is refused as soon as it passes the limit, so no route buffers more than
 * this (a JSON route's validator reads the whole body before it can refuse anything).
 */
export function limitBodies(maxBytes: number): MiddlewareHandler<AppEnv> {
  const limit = bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError(413, "payload_too_large", `request body exceeds ${maxBytes} bytes`);
    },
  });
  return (c, next) => (isUploadRoute(c.req.method, c.req.path) ? next() : limit(c, next));
}
