/** Longest filename kept, in UTF-16 code units; longer ones are shortened keeping their extension. */
export const MAX_FILENAME = 255;
const REPLACEMENT = "\uFFFD";

export const FILENAME_NOTE_CODES = [
  "filename_shortened",
  "filename_replaced",
  "filename_path_removed",
  "filename_bidi_removed",
] as const;
export type FilenameNoteCode = (typeof FILENAME_NOTE_CODES)[number];

// Bidirectional formatting characters (embeddings, overrides, isolates, marks): an RTL override makes
// "photo\u202Egpj.exe" read as "photoexe.jpg" in every list and CSV that shows the name.
const BIDI = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;

export interface FilenameNote {
  /** Index of the part in the upload. */
  index: number;
  code: FilenameNoteCode;
  message: string;
}

/**
 * A part's filename as stored: its own text when it is valid UTF-8 (busboy decodes it as UTF-8 and puts
 * U+FFFD where the bytes were not), without its directory part (a folder upload's "photos/a.jpg"; the
 * upload keeps paths for this), control characters replaced by U+FFFD (Postgres text refuses NUL, and a
 * newline in a name breaks every CSV and log line it reaches), bidirectional formatting characters removed,
 * and at most MAX_FILENAME long. Says what it changed, so the client is told instead of finding a different
 * name in the results.
 */
export function cleanFilename(
  raw: string | undefined,
  index: number,
): { name: string | null; notes: FilenameNote[] } {
  if (!raw) return { name: null, notes: [] };
  const notes: FilenameNote[] = [];
  // Both separators: browsers send "/", and old Windows clients send a whole "C:\\Users\\...\\a.jpg".
  const base = raw.slice(Math.max(raw.lastIndexOf("/"), raw.lastIndexOf("\\")) + 1);
  if (base !== raw) {
    notes.push({
      index,
      code: "filename_path_removed",
      message: "the filename had a directory part, which was dropped",
    });
  }
  if (!base) return { name: null, notes };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
  let name = base.replace(/[\u0000-\u001f\u007f]/g, REPLACEMENT);
  const visible = name.replace(BIDI, "");
  if (visible !== name) {
    name = visible;
    notes.push({
      index,
      code: "filename_bidi_removed",
      message: "the filename had bidirectional formatting characters (such as U+202E); they were removed",
    });
  }
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
