// What the server keeps per connection (Bun's ws.data). Kept small: at 10,000+ sockets
// every field is paid for thousands of times, and JavaScriptCore sizes objects in steps
// (up to 18 fields fit in 160 bytes, 19 to 26 take 224): count before adding one.
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

/** What a verified token grants a connection, besides its name. */
export interface TokenGrant {
  /** Unix seconds at which the token expires (0: never); the ping sweep enforces it. */
  readonly expires: number;
  /** Rooms the token allows; null means any room. */
  readonly rooms: Set<string> | null;
}

/**
 * What a connection needs only until its welcome: the claim, where to replay from, and what
 * arrives meanwhile. Dropped at the welcome (and at close), so a held connection pays
 * nothing for it.
 */
export interface Entering {
  /** Who this connection is (claimed at admission). */
  readonly identity: Identity;
  /** A new person's resume key, told in this connection's welcome only. */
  readonly resume: string | undefined;
  /** The last inbox position the person was sent, as the directory remembered it at admission. */
  readonly delivered: number;
  /** Inbox position to replay after: the client's ?inbox=, else the last one the person was sent. */
  inboxSince: number;
  /** The person's newest inbox position at admission, when known: nothing to read up to it. */
  readonly inboxHead: number | undefined;
  /** The first room and replay point requested in the connect URL. */
  readonly firstRoom: string;
  readonly since: number | undefined;
  readonly epoch: string | undefined;
  /** Frames from the client, handled after the welcome. */
  backlog: string[] | null;
  /** Private frames for it, with their inbox positions, sent after the welcome. */
  outbox: { seq: number; frame: string }[] | null;
}

/**
 * One connection. Its rate-limit bucket is four numbers on it (no object of its own), and
 * what it needs only while entering lives in `entering`.
 */
export interface Session extends RateState {
  /** Connection number, unique per process lifetime; told as `connectionId` (a number is no string to keep). */
  readonly id: number;
  /** The person on this node this connection belongs to, from open until close. */
  person: Person | null;
  /** The person's name (nick changes it for every connection; its key is the person's). */
  name: string;
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
  /** What a verified token grants (the name comes from it and may not change); null: no token. */
  readonly token: TokenGrant | null;
  ws: ChatSocket | null;
  /** Until the welcome frame is sent: what waits for it (null after, and after close). */
  entering: Entering | null;
  /** Subscribed to its person's inbox topic (released once, on close). */
  inbox: string | null;
  closed: boolean;
}

/** How a connection's number is told (welcome, the moderation API). */
export function connectionId(s: Session): string {
  return s.id.toString(36);
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
  token: TokenGrant | null;
}
