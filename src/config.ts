// Typed, validated configuration from command-line flags and environment variables.
// Every option is a `--kebab-case` flag and an UPPER_SNAKE environment variable; the
// flag wins. An invalid value is a ConfigError whose message names the option, so the
// entry point can print one line and exit 2.
import { basename, relative } from "node:path";
import { parseArgs } from "node:util";
import packageJson from "../package.json" with { type: "json" };
import { WEBHOOK_EVENTS } from "./hooks/webhooks.ts";

/** The version --version prints (package.json's; built into the single executable). */
export const VERSION: string = packageJson.version;

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];
/** auto: colour lines for a person at a terminal, JSON lines for everything else. */
export type LogFormatSetting = "auto" | "json" | "pretty";
/** permessage-deflate: off, one compressor for every socket, or one per socket (memory). */
export type DeflateSetting = "off" | "shared" | "dedicated";
const DEFLATE_SETTINGS: readonly DeflateSetting[] = ["off", "shared", "dedicated"];
/** The protocols a connection can speak (src/protocol/dialects/). */
export type DialectName = "bunchat" | "tutorial";
const DIALECTS: readonly DialectName[] = ["bunchat", "tutorial"];
const LOG_FORMATS: readonly LogFormatSetting[] = ["auto", "json", "pretty"];

export interface Config {
  port: number;
  host: string;
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxConnectionsPerUser: number;
  handshakesPerIp: number;
  idleTimeout: number;
  pingInterval: number;
  maxPayload: number;
  maxTextLength: number;
  maxNameLength: number;
  maxRoomsPerConnection: number;
  nameGrace: number;
  maxPendingPrivate: number;
  maxMembersListed: number;
  rateLimit: number;
  rateBurst: number;
  rateAbuseClose: number;
  backpressureLimit: number;
  presenceWindow: number;
  historyDb: string;
  historyLimit: number;
  historyMaxAge: number;
  historyOnJoin: number;
  authSecret: string;
  tlsCert: string;
  tlsKey: string;
  allowedOrigins: string[];
  trustProxy: boolean;
  redisUrl: string;
  workers: number;
  nodeId: string;
  logLevel: LogLevel;
  logFormat: LogFormatSetting;
  dialect: DialectName;
  perMessageDeflate: DeflateSetting;
  apiKey: string;
  webhookUrl: string;
  webhookSecret: string;
  webhookEvents: string[];
  webhookQueue: number;
  publishHookUrl: string;
  publishHookTimeout: number;
  publishHookFailure: "open" | "closed";
  /** Set for --workers children only (not an option): several processes share the port. */
  reusePort: boolean;
}

export class ConfigError extends Error {}

type Kind = "int" | "string" | "bool" | "list" | "choice";

interface OptionSpec {
  key: keyof Config;
  flag: string;
  env: string;
  kind: Kind;
  default: string;
  min?: number;
  max?: number;
  /** The allowed values of a "choice". */
  choices?: readonly string[];
  help: string;
}

/** The single source of every option: parsing, validation, --help and the README table. */
export const OPTIONS: readonly OptionSpec[] = [
  { key: "port", flag: "port", env: "PORT", kind: "int", default: "3000", min: 0, max: 65535, help: "TCP port to listen on (0 picks a free one)" },
  { key: "host", flag: "host", env: "HOST", kind: "string", default: "0.0.0.0", help: "address to bind" },
  { key: "maxConnections", flag: "max-connections", env: "MAX_CONNECTIONS", kind: "int", default: "10000", min: 1, max: 10_000_000, help: "open WebSocket connections allowed at once; each needs one file descriptor (see `ulimit -n`)" },
  { key: "maxConnectionsPerIp", flag: "max-connections-per-ip", env: "MAX_CONNECTIONS_PER_IP", kind: "int", default: "0", min: 0, max: 10_000_000, help: "open connections per client IP (0 = no cap)" },
  { key: "maxConnectionsPerUser", flag: "max-connections-per-user", env: "MAX_CONNECTIONS_PER_USER", kind: "int", default: "10", min: 1, max: 10_000, help: "open connections one person (a name with its resume key, or a token subject) may have: tabs and devices" },
  { key: "handshakesPerIp", flag: "handshakes-per-ip", env: "HANDSHAKES_PER_IP", kind: "int", default: "0", min: 0, max: 1_000_000, help: "WebSocket handshakes per second per client IP (0 = no cap)" },
  { key: "idleTimeout", flag: "idle-timeout", env: "IDLE_TIMEOUT", kind: "int", default: "120", min: 0, max: 960, help: "seconds of silence before Bun closes a socket (0 = never; 1-7 round up to 8)" },
  { key: "pingInterval", flag: "ping-interval", env: "PING_INTERVAL", kind: "int", default: "30", min: 0, max: 3600, help: "seconds between ping sweeps; a socket that missed the previous ping is terminated (0 = off)" },
  { key: "maxPayload", flag: "max-payload", env: "MAX_PAYLOAD", kind: "int", default: "16384", min: 64, max: 16 * 1024 * 1024, help: "largest frame a client may send, in bytes; larger closes with 1009" },
  { key: "maxTextLength", flag: "max-text-length", env: "MAX_TEXT_LENGTH", kind: "int", default: "4000", min: 1, max: 1_000_000, help: "longest chat or private text, in characters" },
  { key: "maxNameLength", flag: "max-name-length", env: "MAX_NAME_LENGTH", kind: "int", default: "32", min: 1, max: 256, help: "longest user name, in characters" },
  { key: "maxRoomsPerConnection", flag: "max-rooms-per-connection", env: "MAX_ROOMS_PER_CONNECTION", kind: "int", default: "16", min: 1, max: 10_000, help: "rooms one connection may be in at once" },
  { key: "nameGrace", flag: "name-grace", env: "NAME_GRACE", kind: "int", default: "120", min: 0, max: 30 * 86_400, help: "seconds a name stays held for its person after their last connection closes (a reload or a network blip never loses it)" },
  { key: "maxPendingPrivate", flag: "max-pending-private", env: "MAX_PENDING_PRIVATE", kind: "int", default: "200", min: 1, max: 1_000_000, help: "private messages kept for a person who is away, delivered when they come back; more are refused with inbox_full" },
  { key: "maxMembersListed", flag: "max-members-listed", env: "MAX_MEMBERS_LISTED", kind: "int", default: "100", min: 0, max: 1_000_000, help: "names sent in a member list (welcome, joined, who) or in one presence frame; the online count is always exact" },
  { key: "rateLimit", flag: "rate-limit", env: "RATE_LIMIT", kind: "int", default: "20", min: 0, max: 1_000_000, help: "messages per second per connection (0 = no limit)" },
  { key: "rateBurst", flag: "rate-burst", env: "RATE_BURST", kind: "int", default: "40", min: 0, max: 1_000_000, help: "messages a connection may send at once before the rate applies (0 = same as rate)" },
  { key: "rateAbuseClose", flag: "rate-abuse-close", env: "RATE_ABUSE_CLOSE", kind: "int", default: "100", min: 0, max: 1_000_000, help: "rate-limited messages within 10 s that close the connection with 1008 (0 = never close)" },
  { key: "backpressureLimit", flag: "backpressure-limit", env: "BACKPRESSURE_LIMIT", kind: "int", default: "1048576", min: 1024, max: 1024 * 1024 * 1024, help: "bytes queued for one slow client before it is disconnected (it recovers with ?since=)" },
  { key: "presenceWindow", flag: "presence-window", env: "PRESENCE_WINDOW", kind: "int", default: "150", min: 0, max: 10_000, help: "milliseconds over which joins and leaves of a room are coalesced into one presence frame" },
  { key: "historyDb", flag: "history-db", env: "HISTORY_DB", kind: "string", default: "./data/bunchat.db", help: "SQLite file for history; `:memory:` keeps it in memory, `off` disables it" },
  { key: "historyLimit", flag: "history-limit", env: "HISTORY_LIMIT", kind: "int", default: "1000", min: 0, max: 100_000_000, help: "messages kept per room or private conversation (0 = unlimited)" },
  { key: "historyMaxAge", flag: "history-max-age", env: "HISTORY_MAX_AGE", kind: "int", default: "0", min: 0, max: 100 * 365 * 86400, help: "seconds a message is kept (0 = forever)" },
  { key: "historyOnJoin", flag: "history-on-join", env: "HISTORY_ON_JOIN", kind: "int", default: "50", min: 0, max: 1000, help: "recent messages sent with welcome and joined frames" },
  { key: "authSecret", flag: "auth-secret", env: "AUTH_SECRET", kind: "string", default: "", help: "HS256 secret; when set, every connection needs a signed token" },
  { key: "tlsCert", flag: "tls-cert", env: "TLS_CERT", kind: "string", default: "", help: "PEM certificate file; with --tls-key serves https and wss" },
  { key: "tlsKey", flag: "tls-key", env: "TLS_KEY", kind: "string", default: "", help: "PEM private key file" },
  { key: "allowedOrigins", flag: "allowed-origins", env: "ALLOWED_ORIGINS", kind: "list", default: "", help: "comma list of origins allowed to open a WebSocket (empty = all)" },
  { key: "trustProxy", flag: "trust-proxy", env: "TRUST_PROXY", kind: "bool", default: "false", help: "take the client IP from X-Forwarded-For (only behind your own proxy)" },
  { key: "redisUrl", flag: "redis-url", env: "REDIS_URL", kind: "string", default: "", help: "redis:// URL; when set, this process is one node of a cluster" },
  { key: "workers", flag: "workers", env: "WORKERS", kind: "int", default: "1", min: 1, max: 256, help: "server processes sharing the port (more than 1 needs --redis-url)" },
  { key: "nodeId", flag: "node-id", env: "NODE_ID", kind: "string", default: "", help: "this node's name in a cluster (default: random)" },
  { key: "perMessageDeflate", flag: "per-message-deflate", env: "PER_MESSAGE_DEFLATE", kind: "choice", choices: DEFLATE_SETTINGS, default: "off", help: "compress frames for clients that offer permessage-deflate: off, shared (one compressor for all sockets) or dedicated (one per socket: compresses better, costs memory per socket)" },
  { key: "dialect", flag: "dialect", env: "DIALECT", kind: "choice", choices: DIALECTS, default: "bunchat", help: "protocol of connections to / that do not choose one with ?dialect=: bunchat, or tutorial (the frames of the classic ws tutorial's client.html); /ws defaults to bunchat" },
  { key: "logLevel", flag: "log-level", env: "LOG_LEVEL", kind: "choice", choices: LOG_LEVELS, default: "info", help: "debug, info, warn, error or silent" },
  { key: "logFormat", flag: "log-format", env: "LOG_FORMAT", kind: "choice", choices: LOG_FORMATS, default: "auto", help: "json (one JSON object a line), pretty (coloured lines for people) or auto: pretty when stdout is a terminal, else json" },
  { key: "apiKey", flag: "api-key", env: "API_KEY", kind: "string", default: "", help: "key for the server API (/api/…) and /admin, sent as Authorization: Bearer or X-API-Key; unset: the server API answers only requests from this machine (see docs/API.md)" },
  { key: "webhookUrl", flag: "webhook-url", env: "WEBHOOK_URL", kind: "string", default: "", help: "http(s) URL that receives batches of events (docs/API.md); needs --webhook-secret" },
  { key: "webhookSecret", flag: "webhook-secret", env: "WEBHOOK_SECRET", kind: "string", default: "", help: "HMAC-SHA256 key that signs every webhook and publish-hook request" },
  { key: "webhookEvents", flag: "webhook-events", env: "WEBHOOK_EVENTS", kind: "list", default: "", help: `comma list of the events to send (empty = all): ${WEBHOOK_EVENTS.join(", ")}` },
  { key: "webhookQueue", flag: "webhook-queue", env: "WEBHOOK_QUEUE", kind: "int", default: "10000", min: 1, max: 10_000_000, help: "webhook events waiting to be sent at most; beyond, the oldest are dropped (counted and logged)" },
  { key: "publishHookUrl", flag: "publish-hook-url", env: "PUBLISH_HOOK_URL", kind: "string", default: "", help: "http(s) URL asked before each message is stored: allow, reject or replace its text (docs/API.md)" },
  { key: "publishHookTimeout", flag: "publish-hook-timeout", env: "PUBLISH_HOOK_TIMEOUT", kind: "int", default: "1000", min: 10, max: 60_000, help: "milliseconds the publish hook has to answer" },
  { key: "publishHookFailure", flag: "publish-hook-failure", env: "PUBLISH_HOOK_FAILURE", kind: "choice", choices: ["closed", "open"], default: "closed", help: "when the publish hook fails or times out: closed refuses the message (check_unavailable), open lets it through" },
];

function convert(spec: OptionSpec, raw: string, source: string): Config[keyof Config] {
  const where = `${source} (--${spec.flag} / ${spec.env})`;
  switch (spec.kind) {
    case "int": {
      const trimmed = raw.trim();
      if (!/^-?\d+$/.test(trimmed)) throw new ConfigError(`invalid ${where}: "${raw}" is not a whole number`);
      const value = Number(trimmed);
      if ((spec.min !== undefined && value < spec.min) || (spec.max !== undefined && value > spec.max)) {
        throw new ConfigError(`invalid ${where}: ${value} is outside ${spec.min}..${spec.max}`);
      }
      return value;
    }
    case "bool": {
      const v = raw.trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(v)) return true;
      if (["0", "false", "no", "off", ""].includes(v)) return false;
      throw new ConfigError(`invalid ${where}: "${raw}" is not true or false`);
    }
    case "list":
      return raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    case "choice": {
      const v = raw.trim().toLowerCase();
      const choices = spec.choices ?? [];
      if (!choices.includes(v)) throw new ConfigError(`invalid ${where}: "${raw}" is not one of ${choices.join(", ")}`);
      return v;
    }
    case "string":
      return raw;
  }
}

export interface ParsedCommandLine {
  config: Config;
  help: boolean;
  version: boolean;
  positionals: string[];
}

export type FlagDefs = Record<string, { type: "string" | "boolean"; short?: string; multiple?: false }>;

/**
 * node:util's parseArgs (strict), with errors a person can act on: one line that names
 * the flag, and for an unknown one the closest flag there is. `command` prefixes the
 * message ("token: …"). Throws ConfigError.
 */
export function parseFlags(argv: string[], flags: FlagDefs, command = ""): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  const prefix = command ? `${command}: ` : "";
  try {
    const parsed = parseArgs({ args: argv, options: flags, strict: true, allowPositionals: true });
    return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const unknown = /^Unknown option '([^']+)'/.exec(message);
    if (unknown) {
      const near = closestFlag(unknown[1]!, Object.keys(flags));
      throw new ConfigError(`${prefix}unknown option ${unknown[1]}${near ? `; did you mean --${near}?` : " (--help lists the options)"}`);
    }
    const flag = /^Option '(?:-\w, )?(--[\w-]+)/.exec(message)?.[1];
    if (flag && message.includes("argument missing")) throw new ConfigError(`${prefix}${flag} needs a value`);
    if (flag && message.includes("does not take an argument")) throw new ConfigError(`${prefix}${flag} takes no value`);
    throw new ConfigError(`${prefix}${message.split("\n")[0]}`);
  }
}

/** The known flag nearest to a mistyped one (a typo, a swapped pair, a prefix), or null. */
export function closestFlag(given: string, flags: readonly string[]): string | null {
  const word = given.replace(/^-+/, "").split("=")[0]!.toLowerCase().replaceAll("_", "-");
  if (word.length < 2) return null;
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const flag of flags) {
    const d = flag.startsWith(word) ? 0.5 : editDistance(word, flag);
    if (d < bestDistance) [best, bestDistance] = [flag, d];
  }
  return bestDistance <= Math.max(1, Math.floor(word.length / 3)) ? best : null;
}

/** Levenshtein distance where swapping two neighbours costs 1 (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i]!;
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(d[i - 1]![j]! + 1, row[j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** Parse flags (winning) over environment variables over defaults. Throws ConfigError. */
export function parseConfig(argv: string[], env: Record<string, string | undefined> = process.env): ParsedCommandLine {
  const flags: FlagDefs = { help: { type: "boolean", short: "h" }, version: { type: "boolean", short: "v" } };
  for (const spec of OPTIONS) flags[spec.flag] = { type: spec.kind === "bool" ? "boolean" : "string" };
  const parsed = parseFlags(argv, flags);
  const values = parsed.values;
  const config = {} as Record<keyof Config, Config[keyof Config]>;
  for (const spec of OPTIONS) {
    const fromFlag = values[spec.flag];
    const fromEnv = env[spec.env];
    if (fromFlag !== undefined) config[spec.key] = convert(spec, String(fromFlag), "flag");
    else if (fromEnv !== undefined) config[spec.key] = convert(spec, fromEnv, "environment variable");
    else config[spec.key] = convert(spec, spec.default, "default");
  }
  const result = config as unknown as Config;
  // A worker of --workers is never a supervisor itself, whatever flags it inherited.
  result.reusePort = env.BUNCHAT_WORKER === "1";
  if (result.reusePort) result.workers = 1;
  validateCombination(result);
  return { config: result, help: values.help === true, version: values.version === true, positionals: parsed.positionals };
}

function validateCombination(config: Config): void {
  if ((config.tlsCert === "") !== (config.tlsKey === "")) {
    throw new ConfigError("invalid --tls-cert / --tls-key: give both files or neither");
  }
  if (config.workers > 1 && config.redisUrl === "") {
    throw new ConfigError("invalid --workers / WORKERS: more than 1 worker needs --redis-url / REDIS_URL so the workers share one chat");
  }
  if (config.workers > 1 && config.port === 0) {
    throw new ConfigError("invalid --workers / WORKERS: workers share one port, so give a fixed --port / PORT (not 0)");
  }
  for (const [flag, url] of [["--webhook-url / WEBHOOK_URL", config.webhookUrl], ["--publish-hook-url / PUBLISH_HOOK_URL", config.publishHookUrl]] as const) {
    if (url !== "" && !/^https?:\/\/[^\s/]/.test(url)) throw new ConfigError(`invalid ${flag}: "${url}" is not an http:// or https:// URL`);
  }
  if (config.webhookUrl !== "" && config.webhookSecret === "") {
    throw new ConfigError("invalid --webhook-url / WEBHOOK_URL: set --webhook-secret / WEBHOOK_SECRET too, so the receiver can tell the requests are ours");
  }
  const unknownEvent = config.webhookEvents.find((e) => !(WEBHOOK_EVENTS as readonly string[]).includes(e));
  if (unknownEvent !== undefined) {
    throw new ConfigError(`invalid --webhook-events / WEBHOOK_EVENTS: "${unknownEvent}" is not one of ${WEBHOOK_EVENTS.join(", ")}`);
  }
  if (config.redisUrl !== "" && !/^rediss?:\/\//.test(config.redisUrl)) {
    throw new ConfigError(`invalid --redis-url / REDIS_URL: "${config.redisUrl}" is not a redis:// or rediss:// URL`);
  }
}

/** Defaults for tests and embedding: port 0, in-memory history, quiet logs. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  const { config } = parseConfig([], {});
  return { ...config, port: 0, host: "127.0.0.1", historyDb: ":memory:", logLevel: "silent", ...overrides };
}

/**
 * How the user started this process, for usage lines: the single executable by its name
 * (`bunchat`), the source as `bun run <script>`.
 */
export function invokedAs(main = Bun.main, execPath = process.execPath, cwd = process.cwd()): string {
  if (main.startsWith("/$bunfs/")) return basename(execPath);
  return `bun run ${relative(cwd, main) || main}`;
}

export function helpText(program = "bun run src/server.ts"): string {
  const lines = [
    `bunchat ${VERSION} — a real-time chat server on one Bun process`,
    "",
    "Usage:",
    `  ${program} [options]`,
    `  ${program} token <name> [--ttl 1h] [--rooms a,b]   mint an auth token (${program} token --help)`,
    `  ${program} chat <url> [--name alice]   a terminal chat client (${program} chat --help)`,
    `  ${program} --version`,
    "",
    "Every option is also an environment variable; the flag wins.",
    "",
  ];
  const width = Math.max(...OPTIONS.map((o) => o.flag.length + o.env.length)) + 8;
  for (const o of OPTIONS) {
    const left = `  --${o.flag} / ${o.env}`;
    const dflt = o.default === "" ? "" : ` [default: ${o.default}]`;
    lines.push(`${left.padEnd(width)} ${o.help}${dflt}`);
  }
  lines.push("", "Limits: each connection holds one file descriptor; raise `ulimit -n` above --max-connections.");
  return lines.join("\n");
}
