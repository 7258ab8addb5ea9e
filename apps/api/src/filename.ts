/** Longest filename kept, in UTF-16 code units; longer ones are shortened keeping their extension. */
export const MAX_FILENAME = 255;
const REPLACEMENT = "\uFFFD";

export interface FilenameNote {
  /** Index of the part in the upload. */
  index: number;
  code: "filename_shortened" | "filename_replaced";
  message: string;
}

/**
 * A part's filename as stored: its own text when it is valid UTF-8 (busboy decodes it as UTF-8 and puts
 * U+FFFD where the bytes were not), control characters replaced by U+FFFD (Postgres text refuses NUL, and a
 * newline in a name breaks every CSV and log line it reaches), and at most MAX_FILENAME long. Says what it
 * changed, so the client is told instead of finding a different name in the results.
 */
export function cleanFilename(
  raw: string | undefined,
  index: number,
): { name: string | null; notes: FilenameNote[] } {
  if (!raw) return { name: null, notes: [] };
  const notes: FilenameNote[] = [];
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
  let name = raw.replace(/[\u0000-\u001f\u007f]/g, REPLACEMENT);
  if (name.includes(REPLACEMENT)) {
    notes.push({
      index,
      code: "filename_replaced",
      message:
        "the filename had bytes that are not UTF-8 text or control characters; they are stored as U+FFFD",
    });
  }
  if (name.length > MAX_FILENAME) {
    const dot = name.lastIndexOf(".");
    const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : "";
    // Array.from keeps surrogate pairs whole.
    name =
      Array.from(name.slice(0, MAX_FILENAME - ext.length))
        .join("")
        .replace(/[\uD800-\uDBFF]$/, "") + ext;
    notes.push({
      index,
      code: "filename_shortened",
      message: `the filename was longer than ${MAX_FILENAME} characters and was shortened to "${name}"`,
    });
  }
  return { name, notes };
}
