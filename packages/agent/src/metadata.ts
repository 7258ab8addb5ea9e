import exifr from "exifr";

export interface Labels {
  site: string | null;
  line: string | null;
  camera: string | null;
}

export type CapturedFrom = "exif" | "file" | "message" | "received";

const EXIF_TIME = /^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?$/;
const OFFSET = /^[+-]\d{2}:\d{2}$/;

/**
 * EXIF DateTimeOriginal (with OffsetTimeOriginal when the camera wrote it; otherwise the camera's clock is
 * taken to be in this machine's time zone, TZ), or null when the image has none or is not parseable.
 */
export async function exifCapturedAt(bytes: Uint8Array): Promise<Date | null> {
  let tags: { DateTimeOriginal?: unknown; OffsetTimeOriginal?: unknown } | undefined;
  try {
    // Raw strings: exifr would turn the time into a Date in local time and drop the offset.
    tags = await exifr.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), {
      pick: ["DateTimeOriginal", "OffsetTimeOriginal"],
      reviveValues: false,
    });
  } catch {
    return null;
  }
  const raw = typeof tags?.DateTimeOriginal === "string" ? tags.DateTimeOriginal.trim() : "";
  const m = EXIF_TIME.exec(raw);
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac] = m;
  const ms = frac ? Number(`0.${frac}`) * 1000 : 0;
  const offset = typeof tags?.OffsetTimeOriginal === "string" ? tags.OffsetTimeOriginal.trim() : "";
  const at = OFFSET.test(offset)
    ? new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}${offset}`)
    : new Date(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (Number.isNaN(at.getTime()) || at.getFullYear() < 1990) return null;
  return new Date(at.getTime() + Math.round(ms));
}

const FIELDS = ["site", "line", "camera"] as const;

export interface Pattern {
  /** Matches a slash-separated path or topic; the named groups are the labels it gives. */
  match(subject: string): Partial<Labels> | null;
  /** The MQTT subscription for a topic pattern ('{site}' becomes '+'). */
  subscription: string;
}

/**
 * '{site}/{line}/{camera}' style patterns, for a folder's relative path or an MQTT topic: `{name}` is one
 * level (site, line or camera; any other name is a level that is ignored), `+` one level, `*` part of one,
 * `#` the rest (MQTT's multi-level wildcard, last).
 */
export function compilePattern(pattern: string): Pattern {
  const levels = pattern.split("/");
  const names: string[] = [];
  const parts = levels.map((level, i) => {
    if (level === "#") {
      if (i !== levels.length - 1) throw new Error(`'#' must be the last level of ${pattern}`);
      return "(?:.*)";
    }
    if (level === "+") return "[^/]+";
    return level
      .split(/(\{[a-z]+\}|\*)/i)
      .map((piece) => {
        if (piece === "*") return "[^/]*";
        const named = /^\{([a-z]+)\}$/i.exec(piece);
        if (named) {
          names.push(named[1] as string);
          return "([^/]+)";
        }
        return piece.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      })
      .join("");
  });
  const re = new RegExp(`^${parts.join("/")}$`);
  const subscription = levels.map((l) => (/\{[a-z]+\}|\*/i.test(l) ? "+" : l)).join("/");
  return {
    subscription,
    match(subject) {
      const m = re.exec(subject);
      if (!m) return null;
      const out: Partial<Labels> = {};
      names.forEach((name, i) => {
        if ((FIELDS as readonly string[]).includes(name)) out[name as keyof Labels] = m[i + 1] ?? null;
      });
      return out;
    },
  };
}

/** First non-empty of: what the message or path says, then the flags. */
export function labelsOf(found: Partial<Labels> | null | undefined, defaults: Partial<Labels>): Labels {
  const pick = (k: keyof Labels) => found?.[k] || defaults[k] || null;
  return { site: pick("site"), line: pick("line"), camera: pick("camera") };
}

const JPEG_SOI = [0xff, 0xd8];
const PNG_SIG = [0x89, 0x50, 0x4e, 0x47];

/**
 * Whether a file looks written to the end: a JPEG ends with its EOI marker (trailing padding allowed), a
 * PNG with its IEND chunk. Other formats cannot be told apart this cheaply and count as complete.
 */
export function looksComplete(bytes: Uint8Array): boolean {
  if (bytes.length === 0) return false;
  if (JPEG_SOI.every((b, i) => bytes[i] === b)) {
    let end = bytes.length;
    while (end > 2 && bytes[end - 1] === 0x00) end--;
    return bytes[end - 2] === 0xff && bytes[end - 1] === 0xd9;
  }
  if (PNG_SIG.every((b, i) => bytes[i] === b)) {
    const tail = Buffer.from(bytes.subarray(Math.max(0, bytes.length - 12))).toString("latin1");
    return tail.includes("IEND");
  }
  return true;
}

const TYPES: Record<string, string> = {
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".png": "image/png",
  ".webp": "image/webp",
  ".gif": "image/gif",
  ".tif": "image/tiff",
  ".tiff": "image/tiff",
  ".avif": "image/avif",
  ".heic": "image/heic",
  ".heif": "image/heif",
};

export const IMAGE_EXTENSIONS = new Set(Object.keys(TYPES));

export function contentTypeOf(filename: string | null): string {
  const ext = filename?.toLowerCase().match(/\.[a-z0-9]+$/)?.[0] ?? "";
  return TYPES[ext] ?? "application/octet-stream";
}
