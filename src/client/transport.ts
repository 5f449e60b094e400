// What the client needs of a WebSocket, whichever runtime provides it: the browser's,
// Bun's, Deno's, Node 22's global one, or the `ws` package on Node 20. Only the
// browser-standard `on…` properties are used, which all of them implement.

/** A WebSocket as the client uses it (a structural subset of the standard one). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/**
 * A WebSocket constructor: `WebSocket` where the runtime has one, or `ws`'s default export
 * (`import WebSocket from "ws"`) on Node 20. Typed loosely on purpose: each runtime's class
 * declares its event types differently, and all of them behave as SocketLike.
 */
export type SocketConstructor = new (url: string, protocols?: string[]) => object;

/** `fetch`, for asking why a handshake was refused (browsers cannot read the refusal). */
export type FetchLike = (url: string, init: { headers: Record<string, string> }) => Promise<{ json(): Promise<unknown> }>;

export const OPEN = 1;

/** The WebSocket constructor to use: the option, else the runtime's global one. */
export function socketConstructor(given: SocketConstructor | undefined): SocketConstructor {
  if (given) return given;
  const global = (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
  if (!global) {
    throw new TypeError("bunchat/client: this runtime has no global WebSocket; pass one: connect(url, { WebSocket }) (on Node 20: import WebSocket from \"ws\")");
  }
  return global;
}

/** ws(s):// for the socket, whatever scheme the caller gave (http(s) URLs are accepted too). */
export function socketUrl(base: string, query: Record<string, string | number | undefined>): string {
  const url = new URL(base);
  if (url.protocol === "http:") url.protocol = "ws:";
  if (url.protocol === "https:") url.protocol = "wss:";
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) url.searchParams.set(key, String(value));
  }
  return url.toString();
}

/** The server's /api/admission preflight for the same query: it answers why a handshake is refused. */
export function admissionUrl(base: string, query: Record<string, string | number | undefined>): string {
  const url = new URL(socketUrl(base, query));
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = "/api/admission";
  return url.toString();
}

/** Why the server refused a handshake: the JSON body of the refused upgrade. */
export interface Refusal {
  error: string;
  message: string;
}

/** How long the client waits for /api/admission to say why it was refused: then it retries as after an outage. */
export const REFUSAL_TIMEOUT_MS = 5000;

/**
 * Ask the server why it refused: null when it would admit us now (the refusal was
 * momentary), when it cannot be asked (down, or a cross-origin page it sends no CORS
 * headers to) or does not answer within `timeoutMs` (a request that hangs must not stop
 * the reconnect loop): all are retried as outages. Secrets go in headers (Authorization,
 * X-Resume-Key), never in the URL.
 */
export async function explainRefusal(fetchFn: FetchLike | undefined, url: string, headers: Record<string, string>, timeoutMs = REFUSAL_TIMEOUT_MS): Promise<Refusal | null> {
  if (!fetchFn) return null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Raced, not aborted: FetchLike is any runtime's fetch (or the caller's own), and the
  // package's types name no DOM or Node type such as AbortSignal.
  const timedOut = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), timeoutMs);
  });
  const asked = (async (): Promise<Refusal | null> => {
    const body = (await (await fetchFn(url, { headers })).json()) as { ok?: boolean; error?: unknown; message?: unknown };
    if (body.ok !== false) return null;
    return { error: typeof body.error === "string" ? body.error : "unknown", message: typeof body.message === "string" ? body.message : "" };
  })().catch(() => null);
  try {
    return await Promise.race([asked, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
