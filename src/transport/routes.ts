// Plain HTTP routes: health, metrics, the history API and the admission preflight.
// The web page itself is Bun's HTML import, mounted by app.ts. Every route answers only
// its methods (405 with Allow otherwise) and nothing a request sends can make one throw.
import type { Config } from "../config.ts";
import type { Broker, Page } from "../engine/ports.ts";
import { REPLAY_MAX } from "../engine/replay.ts";
import type { Metrics } from "../obs/metrics.ts";
import { checkRoom } from "../protocol/names.ts";
import type { Admission } from "./admission.ts";
import { apiAuthorized } from "./api-input.ts";
import { jsonError, pathParam, type Handler, type MethodTable } from "./http.ts";

export interface RouteDeps {
  config: Config;
  metrics: Metrics;
  broker: Broker;
  admission: Admission;
  startedAt: number;
  /** Open sockets right now. */
  connections: () => number;
  health: () => Record<string, unknown>;
}

const badRequest = (error: string, message: string, status = 400) => jsonError(status, error, message);

function idParam(url: URL, name: string): number | undefined | null {
  const text = url.searchParams.get(name);
  if (text === null || text === "") return undefined;
  return /^\d{1,15}$/.test(text) ? Number(text) : null;
}

export function httpRoutes(deps: RouteDeps): Record<string, MethodTable> {
  const { config, metrics, broker, admission } = deps;

  const healthz: Handler = () =>
    Response.json({
      status: "ok",
      connections: deps.connections(),
      uptime: Math.round((Date.now() - deps.startedAt) / 1000),
      ...deps.health(),
    });

  const metricsText: Handler = () =>
    new Response(metrics.render(), { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });

  const roomMessages: Handler = async (req, server) => {
    const url = new URL(req.url);
    const rawRoom = pathParam(req, "room");
    if (rawRoom === null) return badRequest("bad_room", "the room in the path is not valid percent-encoding");
    const verdict = checkRoom(rawRoom);
    if (!verdict.ok) return badRequest("bad_room", verdict.reason);
    const room = verdict.name;
    // With AUTH_SECRET a reader needs a token, or the server API's key (the admin page).
    if (config.authSecret !== "" && !(config.apiKey !== "" && apiAuthorized(req, server, config.apiKey))) {
      const auth = await admission.authenticate(req, url);
      if (!auth.ok) return badRequest(auth.refusal.error, auth.refusal.message, auth.refusal.status);
      if (auth.allowedRooms && !auth.allowedRooms.has(room)) return badRequest("forbidden_room", `your token does not allow room "${room}"`, 403);
    }
    if (!broker.keepsHistory) return badRequest("history_off", "this server keeps no history", 404);
    const since = idParam(url, "since");
    const before = idParam(url, "before");
    const limitText = url.searchParams.get("limit");
    if (since === null) return badRequest("bad_since", "since must be a message id (a whole number)");
    if (before === null) return badRequest("bad_before", "before must be a message id (a whole number)");
    if (since !== undefined && before !== undefined) return badRequest("bad_query", "use since or before, not both");
    let limit = 50;
    if (limitText !== null && limitText !== "") {
      if (!/^\d{1,4}$/.test(limitText) || Number(limitText) < 1 || Number(limitText) > REPLAY_MAX) {
        return badRequest("bad_limit", `limit must be a whole number from 1 to ${REPLAY_MAX}`);
      }
      limit = Number(limitText);
    }
    let page: Page;
    try {
      page = since !== undefined ? await broker.after(room, since, limit) : await broker.before(room, before, limit);
    } catch {
      return badRequest("store_unavailable", "history could not be read", 503);
    }
    return Response.json({ room, messages: page.messages, more: page.more });
  };

  const admissionPreflight: Handler = async (req, server) => {
    const result = await admission.admitOrRefuse(req, new URL(req.url), server, false);
    if (result.ok) return Response.json({ ok: true, name: result.session.name, room: result.session.room });
    return Response.json({ ok: false, error: result.refusal.error, message: result.refusal.message }, { status: result.refusal.status });
  };

  return {
    "/healthz": { GET: healthz },
    "/metrics": { GET: metricsText },
    "/api/rooms/:room/messages": { GET: roomMessages },
    "/api/admission": { GET: admissionPreflight },
  };
}
