// What the server keeps per connection (Bun's ws.data). Kept small: at 10,000+ sockets
// every field is paid for thousands of times, and JavaScriptCore sizes objects in steps
// (up to 12 fields fit in 112 bytes, 13 to 18 take 160): count before adding one.
import type { Dialect } from "../protocol/dialects/dialect.ts";
import type { RateState } from "./ratelimit.ts";
import type { ChatSocket, Identity } from "./ports.ts";
import type { Person } from "./registry.ts";
import { SmallMap } from "./small.ts";

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

/** Bits of ConnectionState.flags. */
const ALIVE = 1;
const CLOSED = 2;
const INBOX = 4;

/**
 * Who a connection is and where it is in its life: its person, what it needs while
 * entering, and its yes/no states packed in one number, read through accessors. The
 * accessors live on this base class, not on Session, because JavaScriptCore sizes an
 * object by its class's own prototype too (each accessor there counts as a field): on
 * Session they would take it from 112 bytes to 160.
 */
class ConnectionState {
  /** The person on this node this connection belongs to, from open until close. */
  person: Person | null = null;
  /** ALIVE, CLOSED and INBOX. */
  private flags = ALIVE;

  constructor(
    /** Until the welcome frame is sent: what waits for it (null after, and after close). */
    public entering: Entering | null,
  ) {}

  /** The person's name (a nick changes it for all their connections at once). */
  get name(): string {
    return this.person?.name ?? this.entering?.identity.name ?? "";
  }

  /** A method, not an accessor: methods do not count toward the object's size. */
  private setFlag(bit: number, on: boolean): void {
    this.flags = on ? this.flags | bit : this.flags & ~bit;
  }

  /** Set by pong (or any frame); cleared by each ping sweep. */
  get alive(): boolean {
    return (this.flags & ALIVE) !== 0;
  }
  set alive(on: boolean) {
    this.setFlag(ALIVE, on);
  }

  get closed(): boolean {
    return (this.flags & CLOSED) !== 0;
  }
  set closed(on: boolean) {
    this.setFlag(CLOSED, on);
  }

  /** Subscribed to its person's inbox topic (released once, on close). */
  get inbox(): boolean {
    return (this.flags & INBOX) !== 0;
  }
  set inbox(on: boolean) {
    this.setFlag(INBOX, on);
  }
}

/**
 * One connection. Twelve fields, so JavaScriptCore keeps it in 112 bytes (13 to 18 take
 * 160): its yes/no states share one number, its name is its person's, its rate-limit
 * bucket exists from its first frame on (a connection that only listens keeps none), and
 * what it needs only while entering lives in `entering`.
 */
export class Session extends ConnectionState {
  /** The last inbox position sent to this connection (live frames at or below are not resent). */
  inboxMark = 0;
  /** Room that plain-text frames go to: the last one joined. "" when in none. */
  room = "";
  /** Rooms this connection is in or entering, recorded before any await. */
  readonly rooms = new SmallMap<string, Membership>();
  ws: ChatSocket | null = null;
  /** Its token bucket, made at its first frame (full then, as it would be by now). */
  rate: RateState | null = null;

  constructor(
    /** Connection number, unique per process lifetime; told as `connectionId` (a number is no string to keep). */
    readonly id: number,
    readonly ip: string,
    /** How this connection speaks: its frames' shape, and how its text is read. */
    readonly dialect: Dialect,
    /** What a verified token grants (the name comes from it and may not change); null: no token. */
    readonly token: TokenGrant | null,
    entering: Entering,
  ) {
    super(entering);
  }
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
