// Bun's side of a connection: the upgrade (after admission) and the websocket handlers,
// mapped onto the engine. Bun's ServerWebSocket is the engine's ChatSocket as is; ws.data
// is the Session, typed once. Bun runs `open` and then `close` for every upgrade that
// returned true, even when the client vanished at once, so the slot taken at admission is
// given back exactly once: at close, or here when the upgrade fails.
import type { Server, WebSocketHandler } from "bun";
import type { Config } from "../config.ts";
import type { ChatEngine } from "../engine/engine.ts";
import type { Session } from "../engine/session.ts";
import type { Logger } from "../obs/log.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { Admission } from "./admission.ts";
import { jsonError } from "./http.ts";

export interface TransportDeps {
  config: Config;
  engine: ChatEngine;
  admission: Admission;
  metrics: Metrics;
  log: Logger;
}

/** Requests no route took: WebSocket upgrades on / and /ws, JSON answers for the rest. */
export function upgradeHandler(deps: TransportDeps): (req: Request, server: Server<Session>) => Promise<Response | undefined> {
  const { engine, admission, log } = deps;
  const debug = log.enabled("debug");
  return async (req, srv) => {
    let url: URL;
    try {
      url = new URL(req.url);
    } catch {
      // CONNECT and other requests whose target is not a path.
      return jsonError(400, "bad_request", "the request target is not a URL path");
    }
    const path = url.pathname;
    if (path !== "/" && path !== "/ws") return jsonError(404, "not_found", "no such path");
    if (req.method !== "GET" && req.method !== "HEAD") return jsonError(405, "method_not_allowed", "this path answers GET (the page, or a WebSocket handshake)", { allow: "GET, HEAD" });
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return jsonError(426, "upgrade_required", "connect with a WebSocket client");
    }
    const result = await admission.admitOrRefuse(req, url, srv, true);
    if (!result.ok) return admission.refused(result.refusal);
    const session = result.session;
    const headers = result.protocol ? { "Sec-WebSocket-Protocol": result.protocol } : undefined;
    if (!srv.upgrade(req, { data: session, headers })) {
      // The client went away while we checked: nothing opened, give everything back.
      engine.abandon(session);
      admission.released(session);
      return jsonError(400, "upgrade_failed", "the WebSocket handshake failed");
    }
    admission.upgraded();
    if (debug) log.debug("connected", { user: session.name, ip: session.ip, room: session.entering?.firstRoom });
    return undefined;
  };
}

export function websocketHandlers(deps: TransportDeps): WebSocketHandler<Session> {
  const { config, engine, admission, metrics, log } = deps;
  const debug = log.enabled("debug");
  return {
    maxPayloadLength: config.maxPayload,
    idleTimeout: config.idleTimeout,
    backpressureLimit: config.backpressureLimit,
    // A slow reader past the limit is disconnected rather than silently missing frames;
    // it reconnects with ?since= and loses nothing.
    closeOnBackpressureLimit: true,
    // Off by default: see bench/README.md for what it costs and saves.
    perMessageDeflate: config.perMessageDeflate === "off" ? false : { compress: config.perMessageDeflate, decompress: config.perMessageDeflate },
    open(ws) {
      engine.open(ws, ws.data).catch((error: unknown) => {
        log.error("open_failed", { error: String(error) });
        ws.close(1011, "internal error");
      });
    },
    message(ws, raw) {
      engine.message(ws.data, raw);
    },
    pong(ws) {
      ws.data.alive = true;
    },
    close(ws, code) {
      metrics.closed.inc(String(code));
      if (debug) log.debug("disconnected", { user: ws.data.name, ip: ws.data.ip, code });
      engine.close(ws.data);
      admission.released(ws.data);
    },
  };
}
