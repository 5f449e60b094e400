// The server API: what an operator or the application's backend asks of the chat, as JSON
// over HTTP (docs/API.md). Every endpoint needs the API key (or, without API_KEY, a
// request from this machine); every action is logged as one line (who, what, target) and
// counted in /metrics; and a request to any node acts on every node (cluster control).
import type { Server } from "bun";
import type { Config } from "../config.ts";
import type { ChatEngine } from "../engine/engine.ts";
import type { Moderator } from "../engine/moderation.ts";
import { BrokerUnavailable, DirectoryUnavailable, type Recipient } from "../engine/ports.ts";
import { nameKey } from "../protocol/names.ts";
import type { Session } from "../engine/session.ts";
import type { Logger } from "../obs/log.ts";
import { LabelledCounter, type Metrics } from "../obs/metrics.ts";
import { ApiError, actorOf, apiAccess, name as checkedName } from "./api-input.ts";
import { jsonError, type Handler, type MethodTable } from "./http.ts";
import { messageRoutes } from "./api-messages.ts";
import { moderationRoutes } from "./api-moderation.ts";

export interface ApiDeps {
  config: Config;
  engine: ChatEngine;
  moderator: Moderator;
  metrics: Metrics;
  log: Logger;
}

/** Who called: how they proved it, from where, and who they say they are (X-Actor). */
export interface Caller {
  by: "api-key" | "local";
  ip: string;
  actor?: string;
}

export interface Done {
  status?: number;
  body: unknown;
  /** For actions (not reads): what the log line says besides who did it. */
  logged?: { target: string } & Record<string, string | number | boolean | undefined>;
}

export type ApiHandler = (req: Request & { params: Record<string, string> }, caller: Caller) => Promise<Done>;

export interface ApiContext extends ApiDeps {
  endpoint(action: string, handler: ApiHandler): Handler;
  /** The person who holds (or last held) a name, or 404. */
  holder(rawName: string): Promise<Recipient>;
}

/** Which nodes answered a cluster request, and which did not in time. */
export function apiRoutes(deps: ApiDeps): Record<string, MethodTable> {
  const { config, metrics, log } = deps;
  const actions = new LabelledCounter("bunchat_api_requests_total", "server API requests answered, by action", "action");
  const refusals = new LabelledCounter("bunchat_api_errors_total", "server API requests refused, by error", "error");
  metrics.add(actions);
  metrics.add(refusals);

  const refuse = (status: number, error: string, message: string, headers?: Record<string, string>): Response => {
    refusals.inc(error);
    return jsonError(status, error, message, headers);
  };

  const authorize = (req: Request, server: Server<Session>): Caller | Response => {
    const ip = server.requestIP(req)?.address ?? "unknown";
    const access = apiAccess(req, server, config.apiKey);
    if ("by" in access) return { by: access.by, ip, actor: actorOf(req) };
    const challenge = { "www-authenticate": 'Bearer realm="bunchat"' };
    switch (access.refused) {
      case "api_key_required":
        return refuse(401, "api_key_required", "send the API key as Authorization: Bearer <key> or X-API-Key", challenge);
      case "bad_api_key":
        log.warn("api_bad_key", { ip }); // never the key itself
        return refuse(401, "bad_api_key", "the API key is not right", challenge);
      case "api_local_only":
        return refuse(403, "api_local_only", "this server has no API_KEY, so its API answers only requests from the machine it runs on");
    }
  };

  const endpoint = (action: string, handler: ApiHandler): Handler => async (req, server) => {
    const caller = authorize(req, server);
    if (caller instanceof Response) return caller;
    try {
      const done = await handler(req, caller);
      actions.inc(action);
      if (done.logged) log.info("api", { action, by: caller.by, ip: caller.ip, actor: caller.actor, ...done.logged });
      return Response.json(done.body, { status: done.status ?? 200 });
    } catch (error) {
      if (error instanceof ApiError) return refuse(error.status, error.error, error.message);
      if (error instanceof BrokerUnavailable || error instanceof DirectoryUnavailable) {
        return refuse(503, "store_unavailable", "the chat cannot reach its store right now; try again in a moment");
      }
      log.error("api_failed", { action, error: String(error) });
      return refuse(500, "internal", "internal error");
    }
  };

  const holder = async (rawName: string): Promise<Recipient> => {
    const name = checkedName(rawName, config.maxNameLength);
    const found = await deps.engine.directory.lookup(nameKey(name));
    if (!found) throw new ApiError(404, "no_such_user", `nobody is called "${name}"`);
    return found;
  };

  const context: ApiContext = { ...deps, endpoint, holder };
  return { ...messageRoutes(context), ...moderationRoutes(context) };
}
