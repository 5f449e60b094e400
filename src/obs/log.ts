// Structured logs: one JSON line per event of interest, filtered by level. Chat messages
// are never logged at the default level (volume and privacy); tokens are never logged.
import type { LogLevel } from "../config.ts";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  enabled(level: LogLevel): boolean;
}

export function createLogger(level: LogLevel, nodeId?: string, write: (line: string) => void = (line) => process.stdout.write(line)): Logger {
  const threshold = RANK[level];
  const emit = (lvl: LogLevel, event: string, fields?: LogFields) => {
    if (RANK[lvl] < threshold) return;
    const record: Record<string, unknown> = { ts: new Date().toISOString(), level: lvl, event };
    if (nodeId) record.node = nodeId;
    if (fields) Object.assign(record, fields);
    write(JSON.stringify(record) + "\n");
  };
  return {
    debug: (e, f) => emit("debug", e, f),
    info: (e, f) => emit("info", e, f),
    warn: (e, f) => emit("warn", e, f),
    error: (e, f) => emit("error", e, f),
    enabled: (lvl) => RANK[lvl] >= threshold,
  };
}
