// What the server keeps per connection (Bun's ws.data). Kept small: at 10,000+ sockets
// every field is paid for thousands of times.
import type { RateState } from "./ratelimit.ts";
import type { ChatSocket } from "./ports.ts";
import type { Person } from "./registry.ts";

/** One connection's place in a room. `joined` turns true once its replay was sent. */
export interface Membership {
  readonly room: string;
  joined: boolean;
}

export interface Session {
  /** Connection id, unique per process lifetime. */
  readonly id: string;
  /** The person this connection belongs to, from open until close. */
  person: Person | null;
  /** Name and key admitted with (the person's, once open; nick changes the person's). */
  name: string;
  key: string;
  readonly ip: string;
  /** Room that plain-text frames go to: the last one joined. "" when in none. */
  room: string;
  /** Rooms this connection is in or entering, recorded before any await. */
  readonly rooms: Map<string, Membership>;
  /** Set by pong (or any frame); cleared by each ping sweep. */
  alive: boolean;
  readonly rate: RateState;
  /** True when the name comes from a verified token and may not change. */
  readonly lockedName: boolean;
  /** Unix seconds at which the token expires (0: no token); the ping sweep enforces it. */
  readonly tokenExpires: number;
  /** Rooms a token allows; null means any room. */
  readonly allowedRooms: Set<string> | null;
  /** The first room and replay point requested in the connect URL. */
  readonly firstRoom: string;
  readonly since: number | undefined;
  readonly epoch: string | undefined;
  ws: ChatSocket | null;
  /** False until the welcome frame is sent: frames from the client wait in `backlog`,
   * private frames for it wait in `outbox`. */
  ready: boolean;
  backlog: string[] | null;
  outbox: string[] | null;
  /** Subscribed to its person's inbox topic (released once, on close). */
  inbox: string | null;
  closed: boolean;
}

export interface SessionInit {
  name: string;
  key: string;
  ip: string;
  room: string;
  since?: number;
  epoch?: string;
  lockedName: boolean;
  allowedRooms: Set<string> | null;
  tokenExpires: number;
}
