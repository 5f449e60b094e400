// Structured logs, filtered by level: one JSON object a line for machines (the default
// off a terminal), or one coloured line for a person at a terminal. Chat messages are
// never logged at the default level (volume and privacy); tokens are never logged.
import type { LogFormatSetting, LogLevel } from "../config.ts";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, string | number | boolean | null | undefined>;
export type LogFormat = "json" | "pretty";

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
}

// A reader that went away (a closed pipe, `| head`, a supervisor that stopped first) makes
// every later write fail with EPIPE, thrown or emitted: logging must never take the
// process down with it, so the lines are dropped from then on.
let stdoutGone = false;
let watchingStdout = false;
const toStdout = (line: string) => {
  if (stdoutGone) return;
  if (!watchingStdout) {
    watchingStdout = true;
    process.stdout.on("error", () => void (stdoutGone = true));
  }
  try {
    process.stdout.write(line);
  } catch {
    stdoutGone = true;
  }
};

/**
 * The format for a setting (--log-format / LOG_FORMAT): auto means pretty for a person at
 * a terminal, JSON for pipes, files and log collectors.
 */
export function resolveLogFormat(setting: string | undefined = process.env.LOG_FORMAT, terminal = process.stdout.isTTY === true): LogFormat {
  const chosen = (setting ?? "auto").trim().toLowerCase() as LogFormatSetting;
  if (chosen === "json" || chosen === "pretty") return chosen;
  return terminal ? "pretty" : "json";
}

/**
 * `write` replaces stdout (tests read the lines): then the format is JSON unless given.
 * Without it, the format follows LOG_FORMAT and whether stdout is a terminal.
 */
export function createLogger(level: LogLevel, nodeId?: string, write?: (line: string) => void, format?: LogFormat): Logger {
  const threshold = RANK[level];
  const out = write ?? toStdout;
  const chosen = format ?? (write ? "json" : resolveLogFormat());
  // Colour only where a person reads it: a terminal, and NO_COLOR unset (no-color.org).
  const render = chosen === "pretty" ? prettyLine(!write && process.stdout.isTTY === true && !process.env.NO_COLOR) : jsonLine;
  const emit = (lvl: LogLevel, event: string, fields?: LogFields) => {
    if (RANK[lvl] < threshold) return;
    out(render(new Date(), lvl, event, nodeId, fields) + "\n");
  };
  return {
    debug: (e, f) => emit("debug", e, f),
    info: (e, f) => emit("info", e, f),
    warn: (e, f) => emit("warn", e, f),
    error: (e, f) => emit("error", e, f),
    enabled: (lvl) => RANK[lvl] >= threshold,
  };
}

type Render = (at: Date, level: LogLevel, event: string, nodeId: string | undefined, fields?: LogFields) => string;

const jsonLine: Render = (at, level, event, nodeId, fields) => {
  const record: Record<string, unknown> = { ts: at.toISOString(), level, event };
  if (nodeId) record.node = nodeId;
  if (fields) Object.assign(record, fields);
  return JSON.stringify(record);
};

const COLOUR: Record<LogLevel, string> = { debug: "90", info: "36", warn: "33", error: "31", silent: "0" };

/** `12:04:05.120 INFO  listening  url=http://localhost:3000 history=./data/bunchat.db` */
function prettyLine(colour: boolean): Render {
  const paint = (code: string, text: string) => (colour ? `\x1b[${code}m${text}\x1b[0m` : text);
  return (at, level, event, nodeId, fields) => {
    const parts = [paint("2", at.toISOString().slice(11, 23)), paint(COLOUR[level], level.toUpperCase().padEnd(5))];
    if (nodeId) parts.push(paint("2", `[${nodeId}]`));
    parts.push(paint("1", event));
    for (const [key, value] of Object.entries(fields ?? {})) {
      if (value === undefined) continue;
      // Plain words stay bare; anything with spaces, quotes or nothing at all is quoted.
      const text = typeof value === "string" && /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
      parts.push(`${paint("2", `${key}=`)}${text}`);
    }
    return parts.join(" ");
  };
}
