// What the server keeps per connection (Bun's ws.data). Kept small: at 10,000+ sockets
// every field is paid for thousands of times.
import type { Dialect } from "../protocol/dialects/dialect.ts";
import type { RateState } from "./ratelimit.ts";
import type { ChatSocket, Identity } from "./ports.ts";
import type { Person } from "./registry.ts";
import type { SmallMap } from "./small.ts";

/** One connection's place in a room. `joined` turns true once its replay was sent. */
export interface Membership {
  readonly room: string;
  joined: boolean;
}

export interface Session {
  /** Connection id, unique per process lifetime. */
  readonly id: string;
  /** Who this connection is (claimed at admission). */
  readonly identity: Identity;
  /** The person on this node this connection belongs to, from open until close. */
  person: Person | null;
  /** The person's name and its key (nick changes them for every connection). */
  name: string;
  key: string;
  /** A new person's resume key, told in this connection's welcome only (then dropped). */
  resume: string | undefined;
  /** The last inbox position the person was sent, as the directory remembered it at admission. */
  readonly delivered: number;
  /** Inbox position to replay after: the client's ?inbox=, else the last one the person was sent. */
  inboxSince: number;
  /** The person's newest inbox position at admission, when known: nothing to read up to it. */
  readonly inboxHead: number | undefined;
  /** The last inbox position sent to this connection (live frames at or below are not resent). */
  inboxMark: number;
  readonly ip: string;
  /** How this connection speaks: its frames' shape, and how its text is read. */
  readonly dialect: Dialect;
  /** Room that plain-text frames go to: the last one joined. "" when in none. */
  room: string;
  /** Rooms this connection is in or entering, recorded before any await. */
  readonly rooms: SmallMap<string, Membership>;
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
   * private frames for it wait in `outbox` (with their inbox positions). */
  ready: boolean;
  backlog: string[] | null;
  outbox: { seq: number; frame: string }[] | null;
  /** Subscribed to its person's inbox topic (released once, on close). */
  inbox: string | null;
  closed: boolean;
}

export interface SessionInit {
  identity: Identity;
  resume?: string;
  /** The person's server-side inbox mark, from the claim. */
  delivered: number;
  /** The client's ?inbox= (its own mark), when it sent one. */
  inbox?: number;
  /** The person's newest inbox position, when the claim learned it. */
  inboxHead?: number;
  ip: string;
  dialect: Dialect;
  room: string;
  since?: number;
  epoch?: string;
  lockedName: boolean;
  allowedRooms: Set<string> | null;
  tokenExpires: number;
}
