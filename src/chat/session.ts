// What the server keeps per connection (Bun's ws.data). Kept small: at 10,000+ sockets
// every field is paid for thousands of times.
import type { ServerWebSocket } from "bun";
import type { RateState } from "./ratelimit.ts";

export interface Session {
  /** Connection id, unique per process lifetime. */
  id: string;
  /** Display name and its case-insensitive key (unique on the server). */
  name: string;
  key: string;
  ip: string;
  /** Room that plain-text frames go to: the last one joined. "" when in none. */
  room: string;
  rooms: Set<string>;
  /** Set by pong (or any frame); cleared by each ping sweep. */
  alive: boolean;
  rate: RateState;
  /** True when the name comes from a verified token and may not change. */
  lockedName: boolean;
  /** Unix seconds at which the token expires (0: no token); the ping sweep enforces it. */
  tokenExpires: number;
  /** Rooms a token allows; null means any room. */
  allowedRooms: Set<string> | null;
  /** Replay point requested in the connect URL (?since=). */
  since: number | undefined;
  ws: ServerWebSocket<Session> | null;
  /** False until the welcome frame is sent; frames that arrive earlier wait in backlog. */
  ready: boolean;
  backlog: string[] | null;
  closed: boolean;
}

export type ChatSocket = ServerWebSocket<Session>;
