// Admission: every check a WebSocket handshake must pass before Bun allocates a socket.
// A refusal is a plain HTTP response with a JSON reason; the same checks answer
// GET /api/admission so a browser (which cannot read a refused handshake's status) can
// show why it was turned away.
//
// Caps are reserved synchronously, before the first await (token check, cluster name
// claim), and given back on every path that does not end in an open socket — the ws
// library's completeUpgrade lesson: what was checked before an await must still hold
// after it. So 50 simultaneous handshakes cannot all pass a cap of 8.
import type { Server } from "bun";
import type { Config } from "../config.ts";
import type { ChatEngine } from "../engine/engine.ts";
import type { Session } from "../engine/session.ts";
import type { Metrics } from "../obs/metrics.ts";
import { EPOCH } from "../protocol/decode.ts";
import { checkName, checkRoom, generatedName, nameKey } from "../protocol/names.ts";
import { RESUME_KEY } from "../engine/identity.ts";
import type { Claim } from "../engine/ports.ts";
import { bunchatDialect } from "../protocol/dialects/bunchat.ts";
import type { Dialect } from "../protocol/dialects/dialect.ts";
import { tutorialDialect } from "../protocol/dialects/tutorial.ts";

import type { Sanction } from "../engine/sanctions.ts";
import { verifyToken } from "./jwt.ts";

const DIALECT_BY_NAME = new Map<string, Dialect>([bunchatDialect, tutorialDialect].map((d) => [d.name, d]));

export interface Refusal {
  status: number;
  error: string;
  message: string;
}

export type AdmissionResult = { ok: true; session: Session; protocol: string | null } | Refused;

/** The subprotocol a browser offers next to its token: `new WebSocket(url, ["bearer", token])`. */
export const TOKEN_PROTOCOL = "bearer";
/** And next to its resume key: `new WebSocket(url, ["resume", key])`. */
export const RESUME_PROTOCOL = "resume";

/** The value offered after `marker` in Sec-WebSocket-Protocol (["bearer", token]), if any. */
function offeredWith(req: Request, marker: string): string | null {
  const offered = req.headers.get("sec-websocket-protocol");
  if (!offered) return null;
  const list = offered.split(",").map((p) => p.trim());
  const at = list.indexOf(marker);
  return at >= 0 && at + 1 < list.length ? list[at + 1]! : null;
}

export interface Authenticated {
  ok: true;
  name: string;
  /** Unix seconds. */
  expires: number;
  viaProtocol: boolean;
  /** Rooms the token allows (lower-cased); null means any room. */
  allowedRooms: Set<string> | null;
}

type Refused = { ok: false; refusal: Refusal };
const refuse = (status: number, error: string, message: string): Refused => ({ ok: false, refusal: { status, error, message } });
const SHUTTING_DOWN = () => refuse(503, "shutting_down", "the server is shutting down; try again shortly");
const UNAVAILABLE = () => refuse(503, "store_unavailable", "the chat cannot reach its store right now; try again in a moment");
const BANNED = (ban: Sanction) =>
  refuse(403, "banned", `you are banned from this chat${ban.until === 0 ? "" : ` until ${new Date(ban.until).toISOString()}`}${ban.reason ? `: ${ban.reason}` : ""}`);

/**
 * Some proxies write the client's port too ("203.0.113.7:5678", "[2001:db8::7]:443"). Kept,
 * every connection would be a new address: per-IP caps would never bind and IP bans (which
 * parse an address) would never match.
 */
function withoutPort(entry: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(entry);
  return v4 ? v4[1]! : entry;
}

export class Admission {
  /** Connections admitted and not yet closed, handshakes in progress included. */
  connections = 0;
  private readonly perIp = new Map<string, number>();
  private readonly handshakes = new Map<string, { second: number; count: number }>();

  constructor(private readonly config: Config, private readonly engine: ChatEngine, private readonly metrics: Metrics) {}

  clientIp(req: Request, server: Server<Session>): string {
    if (this.config.trustProxy) {
      // The rightmost entry is the one our own proxy appended; the rest is client-supplied.
      const forwarded = req.headers.get("x-forwarded-for");
      const last = forwarded?.split(",").at(-1)?.trim();
      if (last) return withoutPort(last);
    }
    return server.requestIP(req)?.address ?? "unknown";
  }

  /**
   * Run every check. With `reserve` (a real handshake) a passing one holds a connection
   * slot and its name until the socket closes — or until `released` if the upgrade fails.
   */
  async admitOrRefuse(req: Request, url: URL, server: Server<Session>, reserve: boolean): Promise<AdmissionResult> {
    const c = this.config;
    const ip = this.clientIp(req, server);
    if (this.engine.shuttingDown) return SHUTTING_DOWN();
    const ipBan = this.engine.gate.sanctions?.ipBan(ip);
    if (ipBan) return BANNED(ipBan);
    const origin = req.headers.get("origin");
    if (c.allowedOrigins.length > 0 && origin !== null && !c.allowedOrigins.includes(origin)) {
      return refuse(403, "origin_not_allowed", "this origin may not open a chat connection");
    }
    if (reserve && c.handshakesPerIp > 0 && !this.countHandshake(ip)) {
      return refuse(429, "too_many_handshakes", "too many connection attempts from your address; slow down");
    }
    if (this.connections >= c.maxConnections) return refuse(503, "server_full", "the server is full; try again later");
    if (c.maxConnectionsPerIp > 0 && (this.perIp.get(ip) ?? 0) >= c.maxConnectionsPerIp) {
      return refuse(429, "too_many_connections", "too many connections from your address");
    }
    if (!reserve) return this.identify(req, url, ip, false);
    this.takeSlot(ip);
    let result: AdmissionResult;
    try {
      result = await this.identify(req, url, ip, true);
    } catch (error) {
      this.giveSlot(ip);
      throw error;
    }
    if (!result.ok) this.giveSlot(ip);
    return result;
  }

  /** Who is connecting, to which room, from where in the history; the name claimed last. */
  private async identify(req: Request, url: URL, ip: string, reserve: boolean): Promise<AdmissionResult> {
    const c = this.config;
    let name = url.searchParams.get("name") ?? "";
    let lockedName = false;
    let allowedRooms: Set<string> | null = null;
    let protocol: string | null = null;
    let tokenExpires = 0;
    if (c.authSecret !== "") {
      const auth = await this.authenticate(req, url);
      if (!auth.ok) return auth;
      if (this.engine.shuttingDown) return SHUTTING_DOWN();
      name = auth.name;
      lockedName = true;
      tokenExpires = auth.expires;
      allowedRooms = auth.allowedRooms;
      if (auth.viaProtocol) protocol = TOKEN_PROTOCOL;
    }
    let resume: string | undefined;
    if (!lockedName) {
      const offered = this.resumeOf(req, url);
      if (offered !== null) {
        if (!RESUME_KEY.test(offered.key)) return refuse(400, "bad_resume", "resume must be the key a welcome frame carried");
        resume = offered.key;
        if (offered.viaProtocol) protocol = RESUME_PROTOCOL;
      }
    }
    const generated = name === "";
    if (generated) name = this.freeGeneratedName();
    const nameVerdict = checkName(name, c.maxNameLength);
    if (!nameVerdict.ok) return refuse(400, "bad_name", nameVerdict.reason);
    name = nameVerdict.name;
    const key = nameKey(name);
    const nameBan = this.engine.gate.sanctions?.nameBan(key);
    if (nameBan) return BANNED(nameBan);

    const roomVerdict = checkRoom(url.searchParams.get("room") ?? "lobby");
    if (!roomVerdict.ok) return refuse(400, "bad_room", roomVerdict.reason);
    const room = roomVerdict.name;
    if (allowedRooms && !allowedRooms.has(room)) return refuse(403, "forbidden_room", `your token does not allow room "${room}"`);

    const since = this.idParam(url, "since");
    if (since === null) return refuse(400, "bad_since", "since must be a message id (a whole number)");
    const inbox = this.idParam(url, "inbox");
    if (inbox === null) return refuse(400, "bad_inbox", "inbox must be an inbox position (a whole number)");
    const epoch = url.searchParams.get("epoch") || undefined;
    if (epoch !== undefined && !EPOCH.test(epoch)) return refuse(400, "bad_epoch", "epoch must be the string a welcome frame carried");
    // The tutorial's page connects to "/" with nothing in the query: --dialect decides there.
    const asked = url.searchParams.get("dialect") || (url.pathname === "/ws" ? "bunchat" : c.dialect);
    const dialect = DIALECT_BY_NAME.get(asked);
    if (!dialect) return refuse(400, "bad_dialect", `dialect must be one of ${[...DIALECT_BY_NAME.keys()].join(", ")}`);

    // Last, so a refusal above never leaves a claim counted: who this connection is.
    const directory = this.engine.directory;
    const request = { name, key, resume, subject: lockedName ? name : undefined, maxConnections: c.maxConnectionsPerUser };
    let claim: Claim;
    try {
      claim = await directory.claim(request, !reserve);
      // A generated name someone took meanwhile: try a few others rather than refuse.
      for (let tries = 0; generated && !claim.ok && claim.reason === "taken" && tries < 5; tries++) {
        name = this.freeGeneratedName();
        claim = await directory.claim({ ...request, name, key: nameKey(name) }, !reserve);
      }
    } catch {
      return UNAVAILABLE();
    }
    if (!claim.ok) {
      if (claim.reason === "too_many_connections") {
        return refuse(429, "too_many_user_connections", `${name} has ${c.maxConnectionsPerUser} connections open already; close one first`);
      }
      return refuse(409, "name_taken", `the name "${name}" is in use; if it is yours, connect with its resume key`);
    }
    const personBan = this.engine.gate.sanctions?.personBan(claim.identity.id);
    if (reserve && (this.engine.shuttingDown || personBan)) {
      directory.detach(claim.identity.id, 0);
      return personBan ? BANNED(personBan) : SHUTTING_DOWN();
    }
    if (personBan) return BANNED(personBan);
    return {
      ok: true,
      session: this.engine.newSession({ identity: claim.identity, resume: claim.resume, delivered: claim.delivered, inboxHead: claim.inboxHead, inbox, ip, dialect, room, since, epoch, token: lockedName ? { expires: tokenExpires, rooms: allowedRooms } : null }),
      protocol,
    };
  }

  private freeGeneratedName(): string {
    let name: string;
    do name = generatedName();
    while (this.engine.registry.named(nameKey(name)));
    return name;
  }

  /** A whole-number query parameter: undefined when absent, null when malformed. */
  private idParam(url: URL, param: string): number | undefined | null {
    const text = url.searchParams.get(param);
    if (text === null || text === "") return undefined;
    return /^\d{1,15}$/.test(text) ? Number(text) : null;
  }

  /** Verify the request's token (WebSocket handshake or HTTP API); call only with AUTH_SECRET set. */
  async authenticate(req: Request, url: URL): Promise<Authenticated | Refused> {
    const { token, viaProtocol } = this.tokenOf(req, url);
    if (!token) return refuse(401, "auth_required", "this server needs a token (?token= or Authorization: Bearer)");
    const verdict = await verifyToken(this.config.authSecret, token);
    if (!verdict.ok) return refuse(401, "bad_token", verdict.reason);
    const rooms = verdict.claims.rooms;
    return { ok: true, name: verdict.claims.sub, expires: verdict.claims.exp, viaProtocol, allowedRooms: rooms ? new Set(rooms.map((r) => r.toLowerCase())) : null };
  }

  private tokenOf(req: Request, url: URL): { token: string | null; viaProtocol: boolean } {
    const fromQuery = url.searchParams.get("token");
    if (fromQuery) return { token: fromQuery, viaProtocol: false };
    const fromProtocol = offeredWith(req, TOKEN_PROTOCOL);
    if (fromProtocol) return { token: fromProtocol, viaProtocol: true };
    const auth = req.headers.get("authorization");
    if (auth?.startsWith("Bearer ")) return { token: auth.slice(7).trim(), viaProtocol: false };
    return { token: null, viaProtocol: false };
  }

  /** A resume key, as tokens come: ?resume=, subprotocols ["resume", key], or X-Resume-Key. */
  private resumeOf(req: Request, url: URL): { key: string; viaProtocol: boolean } | null {
    const fromQuery = url.searchParams.get("resume");
    if (fromQuery) return { key: fromQuery, viaProtocol: false };
    const fromProtocol = offeredWith(req, RESUME_PROTOCOL);
    if (fromProtocol) return { key: fromProtocol, viaProtocol: true };
    const fromHeader = req.headers.get("x-resume-key");
    return fromHeader ? { key: fromHeader.trim(), viaProtocol: false } : null;
  }

  /** Fixed one-second window per IP; old windows are dropped as they are replaced. */
  private countHandshake(ip: string): boolean {
    const second = Math.floor(Date.now() / 1000);
    const entry = this.handshakes.get(ip);
    if (!entry || entry.second !== second) {
      if (this.handshakes.size > 100_000) this.handshakes.clear();
      this.handshakes.set(ip, { second, count: 1 });
      return true;
    }
    entry.count++;
    return entry.count <= this.config.handshakesPerIp;
  }

  private takeSlot(ip: string): void {
    this.connections++;
    this.perIp.set(ip, (this.perIp.get(ip) ?? 0) + 1);
  }

  private giveSlot(ip: string): void {
    this.connections--;
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
  }

  /** The upgrade went through: the slot now belongs to an open socket. */
  upgraded(): void {
    this.metrics.admitted.inc();
  }

  /** The socket closed, or the upgrade failed: its slot is free again. */
  released(session: Session): void {
    this.giveSlot(session.ip);
  }

  refused(refusal: Refusal): Response {
    this.metrics.refused.inc(refusal.error);
    return Response.json({ error: refusal.error, message: refusal.message }, { status: refusal.status });
  }
}
