// Reading what a server API request carries: its key, its JSON body, and each field,
// with a 400 {error, message} that names the field when one is wrong.
import type { Server } from "bun";
import { timingSafeEqual } from "node:crypto";
import type { Gathered } from "../engine/control.ts";
import type { Session } from "../engine/session.ts";
import { ProtocolError, validateText } from "../protocol/decode.ts";
import { checkName, checkRoom } from "../protocol/names.ts";

/** A request the API refuses: answered as {error, message} with this status. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly error: string, message: string) {
    super(message);
  }
}

const bad = (error: string, message: string) => new ApiError(400, error, message);

/** Which nodes acted on a cluster-wide request, and which did not answer in time. */
export function reach(gathered: Gathered): { nodes: string[]; missing: string[] } {
  return { nodes: gathered.answers.map((a) => a.node), missing: gathered.missing };
}

/** A count every node answered with (connections reached, connections closed), summed. */
export function total(gathered: Gathered, field: string): number {
  let n = 0;
  for (const a of gathered.answers) {
    const value = (a.result as Record<string, unknown> | null)?.[field];
    if (typeof value === "number") n += value;
  }
  return n;
}

/** Largest request body the API reads. */
const MAX_BODY = 64 * 1024;

/**
 * The body as a JSON object; a body must say it is JSON (so a browser must ask before
 * sending one cross-site). With `optional`, no body at all reads as {}.
 */
export async function jsonBody(req: Request, optional = false): Promise<Record<string, unknown>> {
  if (optional && !req.headers.has("content-type") && (req.headers.get("content-length") ?? "0") === "0") return {};
  const type = req.headers.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) throw new ApiError(415, "bad_content_type", "send the body as JSON with Content-Type: application/json");
  const declared = Number(req.headers.get("content-length") ?? 0);
  if (declared > MAX_BODY) throw new ApiError(413, "body_too_large", `the body is larger than ${MAX_BODY} bytes`);
  const text = await cappedText(req);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bad("bad_json", "the body is not JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw bad("bad_json", "the body must be a JSON object");
  return value as Record<string, unknown>;
}

/**
 * The body's text, read up to MAX_BODY bytes. A body sent in chunks has no Content-Length
 * to refuse it by, so the bytes are counted as they come and reading stops at the limit
 * (counting characters afterwards let 64 Ki three-byte characters through, and read
 * whatever size came first).
 */
async function cappedText(req: Request): Promise<string> {
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY) {
      void reader.cancel().catch(() => {});
      throw new ApiError(413, "body_too_large", `the body is larger than ${MAX_BODY} bytes`);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(Bun.concatArrayBuffers(chunks));
}

export function text(body: Record<string, unknown>, maxTextLength: number, field = "text"): string {
  try {
    return validateText(body[field], { maxTextLength });
  } catch (error) {
    if (error instanceof ProtocolError) throw bad(error.code, `${field}: ${error.message}`);
    throw error;
  }
}

export function optionalString(body: Record<string, unknown>, field: string, max: number): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw bad("bad_field", `${field} must be a string`);
  if (v.length > max) throw bad("bad_field", `${field} is longer than ${max} characters`);
  return v;
}

export function name(raw: string, maxNameLength: number, field = "name"): string {
  const verdict = checkName(raw, maxNameLength);
  if (!verdict.ok) throw bad("bad_name", `${field}: ${verdict.reason}`);
  return verdict.name;
}

export function room(raw: string): string {
  const verdict = checkRoom(raw);
  if (!verdict.ok) throw bad("bad_room", verdict.reason);
  return verdict.name;
}

/** Seconds from now, or undefined for "for ever". */
export function duration(body: Record<string, unknown>): number | undefined {
  const v = body.duration;
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1 || v > 10 * 365 * 86_400) {
    throw bad("bad_field", "duration must be a whole number of seconds from 1 to 315360000 (or absent: for ever)");
  }
  return v;
}

/** ?limit=: 1..max, default `fallback`. */
export function limitParam(url: URL, fallback: number, max: number): number {
  const raw = url.searchParams.get("limit");
  if (raw === null || raw === "") return fallback;
  if (!/^\d{1,7}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) throw bad("bad_limit", `limit must be a whole number from 1 to ${max}`);
  return Number(raw);
}

/** Exactly one of `fields` is present in the body (as a string): which, and its value. */
export function oneOf<F extends string>(body: Record<string, unknown>, fields: readonly F[]): [F, string] {
  const given = fields.filter((f) => body[f] !== undefined && body[f] !== null);
  if (given.length !== 1) throw bad("bad_field", `give exactly one of ${fields.join(", ")}`);
  const field = given[0]!;
  const value = body[field];
  if (typeof value !== "string" || value.length === 0 || value.length > 256) throw bad("bad_field", `${field} must be a non-empty string`);
  return [field, value];
}

// ---- who is calling -------------------------------------------------------------------

const digest = (text: string) => new Bun.CryptoHasher("sha256").update(text).digest();

/** The key a request presents: Authorization: Bearer <key>, or X-API-Key. */
export function presentedKey(req: Request): string | null {
  const auth = req.headers.get("authorization");
  // The scheme is case-insensitive (RFC 9110 §11.1): a backend sending "bearer <key>" has the key.
  if (auth && /^bearer /i.test(auth)) return auth.slice(7).trim();
  return req.headers.get("x-api-key");
}

/** Compared as SHA-256 digests in constant time: neither the key nor its length leaks. */
export function sameKey(given: string, key: string): boolean {
  return timingSafeEqual(digest(given), digest(key));
}

const LOOPBACK_HOST = /^(localhost|[\w-]+\.localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;

function loopbackAddress(address: string): boolean {
  return address === "::1" || /^(::ffff:)?127\./.test(address);
}

/**
 * Without API_KEY the API answers only this machine: a loopback peer, not relayed by a
 * proxy (no forwarding headers), addressed by a loopback host name (a DNS-rebinding page
 * is not), and from a page of this server or no page at all (no cross-site request).
 */
export function fromThisMachine(req: Request, server: Server<Session>): boolean {
  const peer = server.requestIP(req)?.address ?? "";
  if (!loopbackAddress(peer)) return false;
  const h = req.headers;
  if (h.has("x-forwarded-for") || h.has("forwarded") || h.has("x-real-ip")) return false;
  const host = h.get("host") ?? "";
  if (!LOOPBACK_HOST.test(host)) return false;
  const origin = h.get("origin");
  if (origin === null) return true;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/** An optional X-Actor header naming the person behind a call (logged with it). */
export function actorOf(req: Request): string | undefined {
  const actor = req.headers.get("x-actor");
  if (!actor) return undefined;
  return actor.replace(/[^\x20-\x7e]/g, "").slice(0, 64) || undefined;
}

/** Who a request may use the server API as, or why it may not. */
export type ApiAccess = { by: "api-key" | "local" } | { refused: "api_key_required" | "bad_api_key" | "api_local_only" };

/** The one rule for the server API: the key's holder, or (without API_KEY) this machine. */
export function apiAccess(req: Request, server: Server<Session>, apiKey: string): ApiAccess {
  if (apiKey === "") return fromThisMachine(req, server) ? { by: "local" } : { refused: "api_local_only" };
  const given = presentedKey(req);
  if (!given) return { refused: "api_key_required" };
  return sameKey(given, apiKey) ? { by: "api-key" } : { refused: "bad_api_key" };
}

/** Whether a request may use the server API. */
export function apiAuthorized(req: Request, server: Server<Session>, apiKey: string): boolean {
  return "by" in apiAccess(req, server, apiKey);
}
