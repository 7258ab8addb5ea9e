/**
 * @garbage/log: the one log format of every service (api, worker, migrate): pino JSON lines on stdout with
 * `time` (ISO 8601), `level` as a word, `service`, `pid`, `msg`, and an `err` object (type, message, stack)
 * for errors. Container log collectors read it as is; tests capture it with `captureLogger`.
 */
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface LoggerOptions {
  /** Goes into every line, so one stream of several services' logs can be told apart. */
  service: string;
  level?: LogLevel;
  /** Defaults to stdout, written synchronously: the last lines before a process.exit are never lost. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { service: options.service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      // A credential must never reach a log, even when a whole header object is logged by mistake.
      redact: {
        paths: ["authorization", "headers.authorization", "req.headers.authorization", "apiKey"],
        censor: "[redacted]",
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** One parsed log line. */
export interface LogLine {
  level: string;
  msg: string;
  time: string;
  service: string;
  [field: string]: unknown;
}

/** A real logger whose lines are kept in memory, parsed, for tests to assert on. */
export function captureLogger(
  service = "test",
  level: LogLevel = "debug",
): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const destination: DestinationStream = {
    write: (chunk: string) => {
      for (const line of chunk.split("\n")) if (line.trim()) lines.push(JSON.parse(line) as LogLine);
    },
  };
  return { log: createLogger({ service, level, destination }), lines };
}
