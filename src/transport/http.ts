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

/**
 * A path parameter, percent-decoded once; null when the path's encoding is broken. Bun's
 * router hands params over decoded already: decoding them again would turn a name like
 * "x%41" (sent as x%2541) into another person's, "xA". Broken escapes, which Bun turns
 * into U+FFFD (a character a name may hold), are told from the raw path.
 */
export function pathParam(req: { url: string; params: Record<string, string> }, name: string): string | null {
  try {
    decodeURIComponent(new URL(req.url).pathname);
  } catch {
    return null;
  }
  return req.params[name] ?? "";
}

/** Route tables merged path by path (one path may take GET from one, POST from another). */
export function routeTable(...tables: Record<string, MethodTable>[]): Record<string, Handler> {
  const merged: Record<string, MethodTable> = {};
  for (const table of tables) for (const [path, handlers] of Object.entries(table)) merged[path] = { ...merged[path], ...handlers };
  return Object.fromEntries(Object.entries(merged).map(([path, handlers]) => [path, methods(handlers)]));
}
