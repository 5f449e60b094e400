// createServer(config): wires store, hub, bus, admission and routes into one Bun.serve.
// Tests call it on port 0 in-process; src/server.ts is a thin entry around it.
import type { Server } from "bun";
import { existsSync } from "node:fs";
import type { Bus } from "./bus/bus.ts";
import { LocalBus } from "./bus/local.ts";
import { startHeartbeat } from "./chat/heartbeat.ts";
import { startCluster, type Cluster } from "./cluster/cluster.ts";
import { Hub } from "./chat/hub.ts";
import type { Session } from "./chat/session.ts";
import type { Config } from "./config.ts";
import { ConfigError } from "./config.ts";
import { Admission } from "./http/admission.ts";
import { httpRoutes } from "./http/routes.ts";
import { createLogger, type Logger } from "./obs/log.ts";
import { Metrics } from "./obs/metrics.ts";
import type { HistoryStore } from "./store/history.ts";
import { SqliteHistory } from "./store/sqlite.ts";
import { VolatileIds } from "./store/volatile.ts";
import page from "./web/index.html";

export interface ChatServer {
  readonly server: Server<Session>;
  readonly url: string;
  readonly wsUrl: string;
  readonly port: number;
  readonly hub: Hub;
  readonly store: HistoryStore;
  readonly metrics: Metrics;
  readonly admission: Admission;
  readonly log: Logger;
  /** Graceful stop: refuse new clients, flush history, tell clients, close with 1001. */
  stop(): Promise<void>;
}

export interface CreateOptions {
  log?: Logger;
  /** Replace the history store (cluster mode passes the Redis one). */
  store?: HistoryStore;
  /** Replace the bus; receives the hub's deliver function. */
  bus?: (deliver: Hub["deliver"]) => Bus;
  health?: () => Record<string, unknown>;
}

function openStore(config: Config, metrics: Metrics, log: Logger): HistoryStore {
  if (config.historyDb === "off") return new VolatileIds();
  try {
    return new SqliteHistory({ path: config.historyDb, limit: config.historyLimit, maxAgeSeconds: config.historyMaxAge, metrics, log });
  } catch (error) {
    throw new ConfigError(`cannot open history database --history-db "${config.historyDb}": ${error instanceof Error ? error.message : String(error)}`);
  }
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
  // Per-connection log lines only when someone reads them: no field objects otherwise.
  const debug = log.enabled("debug");
  // The gauge reads the admission count /healthz reports; admission is built below.
  let admissionRef: Admission | null = null;
  const metrics = new Metrics(() => admissionRef?.connections ?? 0, startedAt);
  const tls = tlsOptions(config);
  // With REDIS_URL this process is one node of a cluster: Redis history, bus and directory.
  const cluster: Cluster | null = config.redisUrl ? await startCluster(config, metrics, log) : null;
  const store = options.store ?? cluster?.store ?? openStore(config, metrics, log);
  const hub = new Hub({ config, store, metrics, log, directory: cluster?.directory });
  const admission = new Admission(config, hub, metrics);
  admissionRef = admission;
  const routes = httpRoutes({
    config, metrics, store, admission, startedAt,
    health: () => ({ history: store.keepsHistory ? "on" : "off", ...(cluster?.health() ?? {}), ...(options.health?.() ?? {}) }),
  });

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
      routes: { "/": page, ...routes },
      async fetch(req, srv) {
        const url = new URL(req.url);
        const path = url.pathname;
        if (path !== "/" && path !== "/ws") return Response.json({ error: "not_found", message: "no such path" }, { status: 404 });
        if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
          return Response.json({ error: "upgrade_required", message: "connect with a WebSocket client" }, { status: 426 });
        }
        const result = await admission.admitOrRefuse(req, url, srv, true);
        if (!result.ok) return admission.refused(result.refusal);
        const session = result.session;
        const headers = result.protocol ? { "Sec-WebSocket-Protocol": result.protocol } : undefined;
        if (!srv.upgrade(req, { data: session, headers })) {
          hub.releaseReservation(session.key);
          return Response.json({ error: "upgrade_failed", message: "the WebSocket handshake failed" }, { status: 400 });
        }
        admission.admitted(session);
        if (debug) log.debug("connected", { user: session.name, ip: session.ip, room: session.room });
        return undefined;
      },
      websocket: {
        maxPayloadLength: config.maxPayload,
        idleTimeout: config.idleTimeout,
        backpressureLimit: config.backpressureLimit,
        // A slow reader past the limit is disconnected rather than silently missing frames;
        // it reconnects with ?since= and loses nothing.
        closeOnBackpressureLimit: true,
        perMessageDeflate: false,
        open(ws) {
          void hub.open(ws).catch((error) => {
            log.error("open_failed", { error: String(error) });
            ws.close(1011, "internal error");
          });
        },
        message(ws, raw) {
          hub.message(ws.data, raw);
        },
        pong(ws) {
          ws.data.alive = true;
        },
        close(ws, code) {
          metrics.closed.inc(String(code));
          if (debug) log.debug("disconnected", { user: ws.data.name, ip: ws.data.ip, code });
          hub.close(ws.data);
          admission.released(ws.data);
        },
        error(error, ws) {
          log.error("socket_handler_failed", { error: String(error), user: ws.data.name });
          metrics.errors.inc("internal");
        },
      },
    });
  } catch (error) {
    await store.close();
    await cluster?.close();
    const code = (error as { code?: string }).code;
    if (code === "EADDRINUSE" || /in use/i.test(String(error))) {
      throw new ConfigError(`port ${config.port} is already in use on ${config.host}; choose another with --port / PORT`);
    }
    throw error;
  }

  const bus = options.bus ? options.bus(hub.deliver) : cluster ? cluster.makeBus(hub.deliver) : new LocalBus(hub.deliver);
  hub.attach(server, bus);
  cluster?.onResubscribed((topicsToReplay) => hub.replayMissed(topicsToReplay));
  const stopHeartbeat = startHeartbeat(config.pingInterval, () => hub.sessions.values(), metrics, log);
  const scheme = tls ? "https" : "http";
  const host = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  const url = `${scheme}://${host}:${server.port}`;
  log.info("listening", { url, history: config.historyDb, maxConnections: config.maxConnections });

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      hub.shuttingDown = true;
      stopHeartbeat();
      // Commit and publish what clients already sent, so nothing acknowledged is lost.
      await store.flush();
      hub.flushPresence();
      hub.broadcastSystem("the server is shutting down; reconnect in a moment");
      for (const s of hub.sessions.values()) s.ws?.close(1001, "server shutting down");
      hub.stop();
      await server.stop(true);
      await bus.close();
      await store.close();
      await cluster?.close();
      log.info("stopped", {});
    })();
    return stopping;
  };

  return {
    server,
    url,
    wsUrl: `${tls ? "wss" : "ws"}://${host}:${server.port}/ws`,
    port: server.port ?? config.port,
    hub,
    store,
    metrics,
    admission,
    log,
    stop,
  };
}
