// Every call to /v1 goes through here: the key from sessionStorage as a Bearer header, and API errors turned
// into sentences a person can act on.

const KEY = "garbage-sort.apiKey";
const REVIEWER = "garbage-sort.reviewer";

export const session = {
  key: () => sessionStorage.getItem(KEY),
  setKey: (key: string | null) => (key ? sessionStorage.setItem(KEY, key) : sessionStorage.removeItem(KEY)),
  reviewer: () => sessionStorage.getItem(REVIEWER) ?? "",
  setReviewer: (name: string) => sessionStorage.setItem(REVIEWER, name),
};

const WORDS: Record<number, string> = {
  400: "The request was not accepted",
  401: "The API key was not accepted: enter a valid key",
  403: "This API key may not use that site",
  404: "Not found, or not visible to this API key",
  409: "This cannot be done in the current state",
  413: "Too large: the file, the number of files or the upload exceeds the server's limit",
  415: "Not a supported image: send JPEG, PNG, WebP, GIF, TIFF or AVIF",
  429: "Too many requests: wait a moment and try again",
  503: "The service is unavailable right now: try again shortly",
};

/** An API answer other than 2xx, with the words to show. */
export class ApiFailure extends Error {
  override name = "ApiFailure";
  constructor(
    readonly status: number,
    readonly code: string,
    readonly detail: string,
  ) {
    const words = WORDS[status] ?? (status >= 500 ? "The server failed" : `Request failed (${status})`);
    super(detail && detail !== words ? `${words}. ${detail}` : words);
  }
}

/** Says what went wrong in words, whatever was thrown. */
export function describe(err: unknown): string {
  if (err instanceof ApiFailure) return err.message;
  if (err instanceof TypeError) return "The server cannot be reached: check the connection";
  return err instanceof Error ? err.message : String(err);
}

let onUnauthorized: () => void = () => {};
export const setUnauthorizedHandler = (fn: () => void) => {
  onUnauthorized = fn;
};

export async function request(path: string, init: RequestInit = {}, key = session.key()): Promise<Response> {
  const headers = new Headers(init.headers);
  if (key) headers.set("Authorization", `Bearer ${key}`);
  const res = await fetch(path, { ...init, headers });
  if (res.ok) return res;
  let code = "";
  let message = "";
  try {
    const body = (await res.json()) as { code?: string; message?: string };
    code = body.code ?? "";
    message = body.message ?? "";
  } catch {
    // Not JSON (a proxy's page): the status alone says enough.
  }
  if (res.status === 401) onUnauthorized();
  throw new ApiFailure(res.status, code, message);
}

export async function getJson<T>(path: string, init?: RequestInit): Promise<T> {
  return (await (await request(path, init)).json()) as T;
}

export async function sendJson<T>(method: string, path: string, body: unknown): Promise<T> {
  const init = { method, body: JSON.stringify(body), headers: { "Content-Type": "application/json" } };
  return getJson<T>(path, init);
}

/** A query string from the values that are set. */
export function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params))
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

/**
 * Saves a download (results, stats CSV, reviewed-images tar) straight to disk: a link cannot send the
 * Authorization header, so the API signs this one path for about a minute (POST /v1/downloads) and the
 * browser follows it, streaming the file instead of holding it in memory. Errors the API can tell up front
 * (no such batch, a site the key may not read) reject here, in words.
 */
export async function download(path: string): Promise<void> {
  const { url } = await sendJson<{ url: string }>("POST", "/v1/downloads", { path });
  const a = document.createElement("a");
  a.href = url;
  // The file name comes from the response's Content-Disposition.
  a.download = "";
  a.rel = "noreferrer";
  document.body.append(a);
  a.click();
  a.remove();
}

export const percent = (x: number | null | undefined, digits = 1) =>
  x === null || x === undefined ? "–" : `${(x * 100).toFixed(digits)} %`;
