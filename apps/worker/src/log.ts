/** JSON lines on stdout/stderr: what container log collectors expect, and what the e2e test parses. */
export type Logger = (
  level: "info" | "warn" | "error",
  msg: string,
  fields?: Record<string, unknown>,
) => void;

export const log: Logger = (level, msg, fields = {}) => {
  const line = JSON.stringify({ time: new Date().toISOString(), level, msg, pid: process.pid, ...fields });
  if (level === "info") process.stdout.write(`${line}\n`);
  else process.stderr.write(`${line}\n`);
};

export const errorFields = (err: unknown) =>
  err instanceof Error ? { error: err.message, errorName: err.name } : { error: String(err) };
