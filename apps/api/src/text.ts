import { z } from "@hono/zod-openapi";

// Postgres text cannot hold NUL (the insert fails with a 500), and any other control character in a site,
// line or camera name is a client bug that would only surface later in statistics and CSV exports.
const CONTROL = /\p{Cc}/u;

/** A short human-readable name: no control characters, at most `max` characters. */
export function plainText(max = 200) {
  return z
    .string()
    .max(max)
    .refine((s) => !CONTROL.test(s), {
      message: "must not contain control characters (NUL, tab, newline, ...)",
    });
}
