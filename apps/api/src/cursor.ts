import type { TimeCursor } from "@garbage/db";
import { z } from "@hono/zod-openapi";
import { ApiError } from "./errors";

// Postgres's text of a timestamptz, e.g. 2026-11-27 19:25:39.123456+00.
const PG_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(?:([+-])(\d{2})(?::?(\d{2}))?|Z)?$/;

/**
 * The digits must name a real instant: month 13, February 30th or hour 24 would reach Postgres and fail
 * there as a 500. Each field is checked against the calendar (Date.UTC rolls over what is out of range).
 */
export function isRealTimestamp(text: string): boolean {
  const m = PG_TIMESTAMP.exec(text);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  const offsetOk = m[9] === undefined || (Number(m[9]) <= 15 && Number(m[10] ?? 0) < 60);
  return (
    date.getUTCFullYear() === year &&
    date.getUTCMonth() === month - 1 &&
    date.getUTCDate() === day &&
    date.getUTCHours() === hour &&
    date.getUTCMinutes() === minute &&
    date.getUTCSeconds() === second &&
    offsetOk
  );
}

const shape = z.object({
  at: z.string().refine(isRealTimestamp),
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
