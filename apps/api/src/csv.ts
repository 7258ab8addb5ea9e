export type CsvValue = string | number | boolean | null | undefined;

// A cell a spreadsheet would run as a formula: =, +, -, @ (and their full-width forms, which some spreadsheets
// fold to ASCII), tab or CR, also after leading spaces and tabs (trimmed on import). Filenames and site names
// come from users.
const FORMULA = /^[\t\r]|^[ \t]*[=+\-@\uFF1D\uFF0B\uFF0D\uFF20]/;

function cell(value: CsvValue): string {
  if (value === null || value === undefined) return "";
  if (typeof value !== "string") return String(value);
  const text = FORMULA.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** RFC 4180 CSV (CRLF line ends) with a header row. */
export function toCsv(header: readonly string[], rows: readonly (readonly CsvValue[])[]): string {
  return `${[header, ...rows].map((row) => row.map(cell).join(",")).join("\r\n")}\r\n`;
}
