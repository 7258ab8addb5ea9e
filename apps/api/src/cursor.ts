import type { TimeCursor } from "@garbage/db";
import { z } from "@hono/zod-openapi";
import { ApiError } from "./errors";

// Postgres's text of a timestamptz, e.g. 2026-11-27 19:25:39.123456+00.
const PG_TIMESTAMP = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([+-]\d{2}(:?\d{2})?|Z)?$/;
const shape = z.object({
  at: z.string().regex(PG_TIMESTAMP),
  id: z.uuid(),
  n: z.number().int().min(0).max(2_147_483_647).optional(),
});

/** Opaque to clients: base64url JSON of a keyset position. */
export const encodeCursor = (c: TimeCursor | null): string | null =>
  c === null ? null : Buffer.from(JSON.stringify(c)).toString("base64url");

export function decodeCursor(value: string | undefined): TimeCursor | null {
  if (value === undefined) return null;
  try {
    return shape.parse(JSON.parse(Buffer.from(value, "base64url").toString("utf8")));
  } catch {
    throw new ApiError(400, "validation_error", "cursor: not a cursor from a previous page");
  }
}

export const CursorQuery = z
  .string()
  .max(200)
  .optional()
  .openapi({ description: "`nextCursor` of the previous page" });
