import { createHmac, timingSafeEqual } from "node:crypto";
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import { ApiError } from "./errors";
import type { Principal } from "./principal";
import type { AppEnv } from "./types";

/**
 * Short-lived signed links for downloads. A browser cannot put an Authorization header on a link it
 * navigates to, and fetching a large export into memory first breaks, so POST /v1/downloads signs one exact
 * GET path (with its query) for the key that asked; the link carries the token as `?token=` and streams
 * straight to disk. The token holds the key's principal and sites, so it reads exactly what that key could,
 * and nothing on any other path.
 */

/** The GET paths a token may be issued for: downloads only, never the JSON API at large. */
const DOWNLOAD_PATHS = [
  // Routes match case-sensitively: `results.CSV` is no download, and must not be signed as one.
  /^\/v1\/batches\/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\/results\.(csv|json)$/,
  /^\/v1\/stats\.csv$/,
  /^\/v1\/review\/export$/,
];

export const isDownloadPath = (pathname: string) => DOWNLOAD_PATHS.some((re) => re.test(pathname));

const Payload = z.object({
  /** The exact path and query, without the token. */
  p: z.string(),
  i: z.string(),
  s: z.array(z.string()).nullable(),
  /** Expiry, ms since the epoch. */
  e: z.number().int(),
});
type Payload = z.infer<typeof Payload>;

const mac = (secret: string, body: string) => createHmac("sha256", secret).update(body).digest();

export function signDownloadToken(
  secret: string,
  target: string,
  principal: Principal,
  expiresAt: number,
): string {
  const payload: Payload = { p: target, i: principal.id, s: principal.sites, e: expiresAt };
  const body = Buffer.from(JSON.stringify(payload)).toString("base64url");
  return `${body}.${mac(secret, body).toString("base64url")}`;
}

/** The principal a token was issued to, or null when it is forged, tampered, expired or for another path. */
export function verifyDownloadToken(
  secret: string,
  token: string,
  target: string,
  now = Date.now(),
): Principal | null {
  const [body, signature, extra] = token.split(".");
  if (!body || !signature || extra !== undefined) return null;
  const given = Buffer.from(signature, "base64url");
  const expected = mac(secret, body);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  let payload: Payload;
  try {
    payload = Payload.parse(JSON.parse(Buffer.from(body, "base64url").toString("utf8")));
  } catch {
    return null;
  }
  if (payload.p !== target || payload.e <= now) return null;
  return { id: payload.i, sites: payload.s, name: null };
}

/**
 * The path and raw query of a request with its `token` parameter taken out, other parameters untouched and
 * in order: what the token must have been signed for.
 */
export function withoutToken(url: string): string {
  const parsed = new URL(url);
  const rest = parsed.search
    .slice(1)
    .split("&")
    .filter((part) => part !== "" && !/^token(=|$)/.test(part));
  return rest.length ? `${parsed.pathname}?${rest.join("&")}` : parsed.pathname;
}

/**
 * Authenticates a `?token=` request in place of the API key: only GET (and HEAD) of a download path, only
 * with a valid, unexpired token for exactly this path and query, whose key is still valid. Anything else is
 * 401.
 */
export function downloadTokenAuth(
  secret: string,
  stillValid: (principal: Principal) => Promise<boolean>,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const tokens = c.req.queries("token") ?? [];
    const token = tokens.length === 1 ? tokens[0] : undefined;
    const pathOk = (c.req.method === "GET" || c.req.method === "HEAD") && isDownloadPath(c.req.path);
    const principal = token && pathOk ? verifyDownloadToken(secret, token, withoutToken(c.req.url)) : null;
    if (!principal) {
      throw new ApiError(401, "invalid_token", "the download link is invalid or expired: ask for a new one");
    }
    if (!(await stillValid(principal))) {
      throw new ApiError(401, "invalid_token", "the API key this download link was made for is revoked");
    }
    c.set("principal", principal);
    c.header("Cache-Control", "private, no-store");
    c.header("Referrer-Policy", "no-referrer");
    return next();
  };
}
