// Admission: every check a WebSocket handshake must pass before Bun allocates a socket.
// A refusal is a plain HTTP response with a JSON reason; the same checks answer
// GET /api/admission so a browser (which cannot read a refused handshake's status)
// can show why it was turned away.
import type { Server } from "bun";
import type { Hub } from "../chat/hub.ts";
import { checkName, checkRoom, generatedName, nameKey } from "../chat/names.ts";
import type { Session } from "../chat/session.ts";
import type { Config } from "../config.ts";
import type { Metrics } from "../obs/metrics.ts";
import { verifyToken } from "./jwt.ts";

export interface Refusal {
  status: number;
  error: string;
  message: string;
}

export type AdmissionResult = { ok: true; session: Session; protocol: string | null } | Refused;

/** The subprotocol a browser offers next to its token: `new WebSocket(url, ["bearer", token])`. */
export const TOKEN_PROTOCOL = "bearer";

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

export class Admission {
  /** Connections admitted and not yet closed: exact, because only upgrade and close move it. */
  connections = 0;
  private readonly perIp = new Map<string, number>();
  private readonly handshakes = new Map<string, { second: number; count: number }>();

  constructor(private readonly config: Config, private readonly hub: Hub, private readonly metrics: Metrics) {}

  clientIp(req: Request, server: Server<Session>): string {
    if (this.config.trustProxy) {
      // The rightmost entry is the one our own proxy appended; the rest is client-supplied.
      const forwarded = req.headers.get("x-forwarded-for");
      const last = forwarded?.split(",").at(-1)?.trim();
      if (last) return last;
    }
    return server.requestIP(req)?.address ?? "unknown";
  }

  /** Run every check. With `reserve`, a passing handshake holds its name until open/close. */
  async admitOrRefuse(req: Request, url: URL, server: Server<Session>, reserve: boolean): Promise<AdmissionResult> {
    const c = this.config;
    const ip = this.clientIp(req, server);
    if (this.hub.shuttingDown) return refuse(503, "shutting_down", "the server is shutting down; try again shortly");
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

    let name = url.searchParams.get("name") ?? "";
    let lockedName = false;
    let allowedRooms: Set<string> | null = null;
    let protocol: string | null = null;
    let tokenExpires = 0;
    if (c.authSecret !== "") {
      const auth = await this.authenticate(req, url);
      if (!auth.ok) return auth;
      name = auth.name;
      lockedName = true;
      tokenExpires = auth.expires;
      allowedRooms = auth.allowedRooms;
      if (auth.viaProtocol) protocol = TOKEN_PROTOCOL;
    }

    if (name === "") {
      do name = generatedName();
      while (!this.hub.nameAvailable(nameKey(name)));
    }
    const nameVerdict = checkName(name, c.maxNameLength);
    if (!nameVerdict.ok) return refuse(400, "bad_name", nameVerdict.reason);
    name = nameVerdict.name;
    const key = nameKey(name);
    if (!this.hub.nameAvailable(key)) return refuse(409, "name_taken", `the name "${name}" is taken; choose another`);

    const roomVerdict = checkRoom(url.searchParams.get("room") ?? "lobby");
    if (!roomVerdict.ok) return refuse(400, "bad_room", roomVerdict.reason);
    const room = roomVerdict.name;
    if (allowedRooms && !allowedRooms.has(room)) return refuse(403, "forbidden_room", `your token does not allow room "${room}"`);

    let since: number | undefined;
    const sinceText = url.searchParams.get("since");
    if (sinceText !== null && sinceText !== "") {
      if (!/^\d{1,15}$/.test(sinceText)) return refuse(400, "bad_since", "since must be a message id (a whole number)");
      since = Number(sinceText);
    }
    // Last, so a refusal above never leaves a name held: claim it here (and cluster-wide).
    const taken = refuse(409, "name_taken", `the name "${name}" is taken; choose another`);
    if (reserve ? !(await this.hub.reserveName(key, name)) : !(await this.hub.nameFree(key))) return taken;
    return { ok: true, session: this.hub.newSession(name, ip, room, since, lockedName, allowedRooms, tokenExpires), protocol };
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
    const offered = req.headers.get("sec-websocket-protocol");
    if (offered) {
      const list = offered.split(",").map((p) => p.trim());
      if (list.includes(TOKEN_PROTOCOL)) {
        const token = list.find((p) => p !== TOKEN_PROTOCOL);
        if (token) return { token, viaProtocol: true };
      }
    }
    const auth = req.headers.get("authorization");
    if (auth?.startsWith("Bearer ")) return { token: auth.slice(7).trim(), viaProtocol: false };
    return { token: null, viaProtocol: false };
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

  admitted(session: Session): void {
    this.connections++;
    this.perIp.set(session.ip, (this.perIp.get(session.ip) ?? 0) + 1);
    this.metrics.admitted.inc();
  }

  released(session: Session): void {
    this.connections--;
    const n = (this.perIp.get(session.ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(session.ip);
    else this.perIp.set(session.ip, n);
  }

  refused(refusal: Refusal): Response {
    this.metrics.refused.inc(refusal.error);
    return Response.json({ error: refusal.error, message: refusal.message }, { status: refusal.status });
  }
}
