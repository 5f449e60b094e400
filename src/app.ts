// createServer(config): wires the broker (in-process + SQLite, or Redis), the engine,
// admission, routes and Bun's transport into one Bun.serve. Tests call it on port 0
// in-process; src/server.ts is a thin entry around it.
import type { Server } from "bun";
import { existsSync } from "node:fs";
import { LocalBroker } from "./broker/local.ts";
import { SqliteStore } from "./broker/sqlite.ts";
import type { MessageStore } from "./broker/store.ts";
import { VolatileStore } from "./broker/volatile.ts";
import type { Config } from "./config.ts";
import { ConfigError } from "./config.ts";
import type { Database } from "bun:sqlite";
import { MemoryIdentities, SqliteIdentities } from "./broker/identities.ts";
import type { SanctionStore } from "./engine/sanctions.ts";
import { openBackendDoor, type BackendDoor } from "./backend-door.ts";
import { MemorySanctions, SqliteSanctions } from "./broker/sanctions.ts";
import type { WebhookTiming } from "./hooks/webhooks.ts";
import { apiRoutes } from "./transport/api.ts";
import { jsonError, routeTable } from "./transport/http.ts";
import admin from "./web/admin.html";
import { ChatEngine } from "./engine/engine.ts";
import { peopleRetentionSeconds } from "./engine/identity.ts";
import { LocalDirectory } from "./engine/local-directory.ts";
import type { Registry } from "./engine/registry.ts";
import { startHeartbeat } from "./engine/heartbeat.ts";
import type { Broker, Directory } from "./engine/ports.ts";
import type { Session } from "./engine/session.ts";
import { createLogger, type Logger } from "./obs/log.ts";
import { Metrics } from "./obs/metrics.ts";
import { redact, startCluster, type Cluster } from "./redis/cluster.ts";
import { Admission } from "./transport/admission.ts";
import { upgradeHandler, websocketHandlers } from "./transport/bun.ts";
import { methods } from "./transport/http.ts";
import { httpRoutes } from "./transport/routes.ts";
import page from "./web/index.html";
// Embedded as a file, so the single executable serves it too.
import favicon from "./web/favicon.svg" with { type: "file" };

/** How long a graceful stop lets close frames reach the clients before the sockets go. */
const CLOSE_DRAIN_MS = 200;

/** The admin page is a page: other methods are 405 with Allow, as every route's are. */
const notAllowed = () => jsonError(405, "method_not_allowed", "use GET, HEAD", { allow: "GET, HEAD" });
const ADMIN_OTHER_METHODS = { POST: notAllowed, PUT: notAllowed, DELETE: notAllowed, PATCH: notAllowed };

export interface ChatServer {
  readonly server: Server<Session>;
  readonly url: string;
  readonly wsUrl: string;
  readonly port: number;
  readonly engine: ChatEngine;
  readonly broker: Broker;
  readonly metrics: Metrics;
  readonly admission: Admission;
  readonly log: Logger;
  /** Graceful stop: refuse new clients, commit what was sent, tell clients, close with 1001. */
  stop(): Promise<void>;
}

export interface CreateOptions {
  log?: Logger;
  /** Replace the broker (tests wrap one to delay or reorder its answers). */
  broker?: (config: Config, metrics: Metrics, log: Logger) => Broker;
  health?: () => Record<string, unknown>;
  /** Webhook batching and retry timing (tests make retries quick). */
  webhookTiming?: Partial<WebhookTiming>;
}

function openStore(config: Config, metrics: Metrics, log: Logger): MessageStore & { db?: Database } {
  if (config.historyDb === "off") return new VolatileStore();
  try {
    return new SqliteStore({ path: config.historyDb, limit: config.historyLimit, maxAgeSeconds: config.historyMaxAge, metrics, log });
  } catch (error) {
    throw new ConfigError(`cannot open history database --history-db "${config.historyDb}": ${error instanceof Error ? error.message : String(error)}`);
  }
}

/**
 * The embedded default: history in SQLite (or none), fan-out in this process, and people
 * kept with the history (a restart keeps who holds which name, and their away messages).
 */
function embedded(config: Config, metrics: Metrics, log: Logger): { broker: Broker; directory: (registry: Registry) => Directory; sanctions: SanctionStore } {
  const store = openStore(config, metrics, log);
  const identities = store.db ? new SqliteIdentities(store.db) : new MemoryIdentities();
  const retention = peopleRetentionSeconds(config);
  return {
    broker: new LocalBroker(store),
    directory: (registry) => new LocalDirectory(registry, identities, config.nameGrace * 1000, Date.now, retention),
    sanctions: store.db ? new SqliteSanctions(store.db) : new MemorySanctions(),
  };
}

function tlsOptions(config: Config): { cert: ReturnType<typeof Bun.file>; key: ReturnType<typeof Bun.file> } | undefined {
  if (config.tlsCert === "") return undefined;
  for (const [flag, path] of [["--tls-cert", config.tlsCert], ["--tls-key", config.tlsKey]] as const) {
    if (!existsSync(path)) throw new ConfigError(`cannot read ${flag} file "${path}": no such file`);
  }
  return { cert: Bun.file(config.tlsCert), key: Bun.file(config.tlsKey) };
}

export async function createServer(config: Config, options: CreateOptions = {}): Promise<ChatServer> {
  const startedAt = Date.now();
  const log = options.log ?? createLogger(config.logLevel, config.nodeId || undefined);
  // The gauge reads the engine's count of open sockets; the engine is built below.
  let engineRef: ChatEngine | null = null;
  const metrics = new Metrics(() => engineRef?.registry.connections ?? 0, startedAt);
  const tls = tlsOptions(config);
  // With REDIS_URL this process is one node of a cluster: Redis broker and directory.
  const cluster: Cluster | null = config.redisUrl ? await startCluster(config, metrics, log) : null;
  const local = cluster ? null : embedded(config, metrics, log);
  const broker = options.broker?.(config, metrics, log) ?? cluster?.broker ?? local!.broker;
  const engine = new ChatEngine({ config, broker, directory: cluster?.directory ?? local!.directory, metrics, log });
  engineRef = engine;
  if (cluster) cluster.directory.onEvicted = (ids) => engine.evict(ids);
  let extras: BackendDoor;
  try {
    extras = await openBackendDoor(config, engine, cluster?.nodeId ?? (config.nodeId || "local"), cluster?.sanctions ?? local!.sanctions, options.webhookTiming);
  } catch (error) {
    await (cluster ?? broker).close();
    throw error;
  }
  const admission = new Admission(config, engine, metrics);
  const routes = routeTable(
    httpRoutes({
      config, metrics, broker, admission, startedAt,
      connections: () => engine.registry.connections,
      health: () => ({ ...broker.health(), ...(cluster?.health() ?? {}), ...(options.health?.() ?? {}) }),
    }),
    apiRoutes({ config, engine, moderator: extras.moderator, metrics, log }),
  );
  const transport = { config, engine, admission, metrics, log };

  let server: Server<Session>;
  try {
    server = Bun.serve<Session>({
      port: config.port,
      hostname: config.host,
      // Explicit: left unset, Bun lets a second process bind the same port silently.
      // Several workers share a port on purpose only in cluster mode.
      reusePort: config.reusePort,
      development: false,
      ...(tls ? { tls } : {}),
      routes: {
        // The page answers GET (and HEAD) only; other methods on / reach the upgrade handler's 405.
        "/": { GET: page },
        "/admin": { GET: admin, ...ADMIN_OTHER_METHODS },
        ...routes,
        // Browsers ask for /favicon.ico on every page of the origin (JSON routes too).
        "/favicon.ico": methods({ GET: () => new Response(Bun.file(favicon), { headers: { "content-type": "image/svg+xml", "cache-control": "public, max-age=86400" } }) }),
      },
      fetch: upgradeHandler(transport),
      websocket: websocketHandlers(transport),
      error(error) {
        // Nothing a request sends should get here; if a bug does, answer without a stack.
        log.error("request_failed", { error: String(error) });
        return Response.json({ error: "internal", message: "internal error" }, { status: 500 });
      },
    });
  } catch (error) {
    extras.stop();
    await (cluster ?? broker).close();
    const code = (error as { code?: string }).code;
    if (code === "EADDRINUSE" || /in use/i.test(String(error))) {
      throw new ConfigError(`port ${config.port} is already in use on ${config.host}; choose another with --port / PORT`);
    }
    throw error;
  }

  engine.attach(server);
  const stopHeartbeat = startHeartbeat(config.pingInterval, () => engine.sessions(), metrics, log);
  const scheme = tls ? "https" : "http";
  const host = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  const url = `${scheme}://${host}:${server.port}`;
  log.info("listening", cluster
    ? { url, node: cluster.nodeId, redis: redact(config.redisUrl), maxConnections: config.maxConnections }
    : { url, history: config.historyDb, maxConnections: config.maxConnections });

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      engine.shuttingDown = true;
      stopHeartbeat();
      // Commit and deliver what clients already sent, so nothing acknowledged is lost.
      await broker.flush();
      engine.broadcastSystem("the server is shutting down; reconnect in a moment");
      // One I/O turn: frames clients already sent are read (and counted) now.
      const framesBefore = metrics.messagesIn.value;
      await new Promise((resolve) => setImmediate(resolve));
      const stillSending = metrics.messagesIn.value !== framesBefore;
      const closing = engine.registry.connections;
      for (const s of engine.sessions()) s.ws?.close(1001, "server shutting down");
      // Bun calls a socket closed the moment its close frame is queued, and stop(true)
      // then closes the TCP connection at once; a client still sending has unread data in
      // our receive buffer, so the kernel answers with a reset that can overtake the close
      // frame (the client sees 1006, not 1001). When clients were still sending as we
      // stopped, give the frames a moment to get there.
      if (closing > 0 && stillSending) await Bun.sleep(CLOSE_DRAIN_MS);
      await server.stop(true);
      // Everyone left: other nodes hear it before this one lets go of Redis.
      await engine.flushPresence();
      engine.stop();
      extras.stop();
      if (!cluster) await engine.directory.close();
      await (cluster ?? broker).close();
      // What the last leaves told the webhooks gets one last try.
      await extras.webhooks?.stop();
      log.info("stopped", {});
    })();
    return stopping;
  };

  return {
    server,
    url,
    wsUrl: `${tls ? "wss" : "ws"}://${host}:${server.port}/ws`,
    port: server.port ?? config.port,
    engine,
    broker,
    metrics,
    admission,
    log,
    stop,
  };
}
