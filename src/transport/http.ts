// Small HTTP answers shared by every route: JSON errors with a stable code, and method
// dispatch that answers 405 with Allow instead of running a handler for the wrong verb.
import type { Server } from "bun";
import type { Session } from "../engine/session.ts";

export type Handler = (req: Request & { params: Record<string, string> }, server: Server<Session>) => Response | Promise<Response>;

export function jsonError(status: number, error: string, message: string, headers?: Record<string, string>): Response {
  return Response.json({ error, message }, { status, headers });
}

export type MethodTable = Partial<Record<"GET" | "POST" | "PUT" | "DELETE" | "PATCH", Handler>>;

/** One handler per method; HEAD follows GET; anything else is 405 with the Allow list. */
export function methods(handlers: MethodTable): Handler {
  const allowed = Object.keys(handlers);
  if (handlers.GET) allowed.push("HEAD");
  const allow = allowed.join(", ");
  return (req, server) => {
    const method = req.method === "HEAD" ? "GET" : req.method;
    const handler = handlers[method as keyof typeof handlers];
    if (!handler) return jsonError(405, "method_not_allowed", `use ${allow}`, { allow });
    return handler(req, server);
  };
}

/** A path parameter, percent-decoded once; null when its encoding is broken. */
export function pathParam(req: { params: Record<string, string> }, name: string): string | null {
  const raw = req.params[name] ?? "";
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

/** Route tables merged path by path (one path may take GET from one, POST from another). */
export function routeTable(...tables: Record<string, MethodTable>[]): Record<string, Handler> {
  const merged: Record<string, MethodTable> = {};
  for (const table of tables) for (const [path, handlers] of Object.entries(table)) merged[path] = { ...merged[path], ...handlers };
  return Object.fromEntries(Object.entries(merged).map(([path, handlers]) => [path, methods(handlers)]));
}
