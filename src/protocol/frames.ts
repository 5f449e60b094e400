// Every frame of the bunchat protocol, both directions: the types the server, the web page
// and the client SDK share. docs/PROTOCOL.md is the prose twin of this file; decode.ts
// reads what clients send.

export type Ref = string | number;

// ---- client → server -------------------------------------------------------------

export type ClientFrame =
  | { type: "chat"; room?: string; text: string; ref?: Ref }
  | { type: "private"; to: string; text: string; ref?: Ref }
  | { type: "join"; room: string; since?: number; epoch?: string; ref?: Ref }
  | { type: "leave"; room: string; ref?: Ref }
  | { type: "nick"; name: string; ref?: Ref }
  | { type: "typing"; room?: string; ref?: Ref }
  | { type: "history"; room?: string; with?: string; before?: number; limit?: number; ref?: Ref }
  | { type: "who"; room?: string; ref?: Ref }
  | { type: "ping"; ref?: Ref };

export type ClientType = ClientFrame["type"];

// ---- server → client -------------------------------------------------------------

export interface MessageFrame {
  type: "message";
  id: number;
  room: string;
  from: string;
  text: string;
  ts: number;
  /** Sent by the application's backend through the server API, not by a connected person. */
  bot?: true;
  ref?: Ref;
}

export interface PrivateFrame {
  type: "private";
  /** The message's id in its conversation (the two people's shared history). */
  id: number;
  from: string;
  to: string;
  text: string;
  ts: number;
  /** Sent through the server API by the application's backend. */
  bot?: true;
  ref?: Ref;
  /**
   * Delivered at once (the recipient had a connection) or queued until they come back.
   * Set on frames fanned out; absent in history pages.
   */
  state?: "delivered" | "queued";
  /**
   * Position in the receiving person's inbox (every private message they sent or got,
   * numbered 1, 2, 3…): reconnect with ?inbox=<last box> to get what was missed. Absent in
   * history pages.
   */
  box?: number;
}

export type HistoryItem = MessageFrame | PrivateFrame;

export type ErrorCode =
  | "bad_json"
  | "bad_frame"
  | "unknown_type"
  | "bad_field"
  | "empty_text"
  | "text_too_long"
  | "binary_not_supported"
  | "rate_limited"
  | "no_such_user"
  | "not_in_room"
  | "bad_room"
  | "forbidden_room"
  | "too_many_rooms"
  | "inbox_full"
  | "recipient_away"
  | "bad_name"
  | "name_taken"
  | "name_locked"
  | "history_off"
  | "store_unavailable"
  | "store_uncertain"
  | "shutting_down"
  | "muted"
  | "banned"
  | "rejected"
  | "check_unavailable"
  | "internal";

/** Close codes of the server API's moderation (docs/PROTOCOL.md): the reason says why. */
export const CLOSE_KICKED = 4001;
export const CLOSE_BANNED = 4003;

/**
 * What a client is told about a room's replay. `more`: the replay stopped at its page size,
 * ask again after its last id. `incomplete`: messages after your `since` are gone (trimmed
 * by retention, or the broker lost its history: see `epoch`), so the replay has a hole.
 */
export interface ReplayFacts {
  history: HistoryItem[];
  more: boolean;
  incomplete?: true;
  /** The history's epoch: it changes when the broker lost its data; pass it back with `since`. */
  epoch: string;
}

export type ServerFrame =
  | ({
      type: "welcome";
      /** `id`: this connection; `person`: who you are across connections and reconnects. */
      you: { id: string; name: string; person: string };
      /** Only when this connection created the person: present it (?resume=) to come back as them. */
      resume?: string;
      /** Your inbox position once the private messages you missed (sent right after) are out. */
      inbox: number;
      room: string;
      online: number;
      members: string[];
      rooms: string[];
    } & ReplayFacts)
  | ({ type: "joined"; room: string; online: number; members: string[]; ref?: Ref } & ReplayFacts)
  | { type: "left"; room: string; ref?: Ref }
  | MessageFrame
  | PrivateFrame
  | { type: "presence"; room: string; joined: string[]; left: string[]; online: number; truncated?: true }
  | { type: "typing"; room: string; from: string }
  | { type: "nick"; room: string; from: string; name: string; ref?: Ref }
  | { type: "history"; room?: string; with?: string; messages: HistoryItem[]; more: boolean; ref?: Ref }
  | { type: "who"; room: string; online: number; members: string[]; ref?: Ref }
  | { type: "error"; code: ErrorCode; message: string; until?: number; ref?: Ref }
  | { type: "pong"; ref?: Ref; ts: number }
  | { type: "system"; text: string; room?: string }
  | { type: "deleted"; room: string; id: number };

/** JSON text of a server frame: call once per publish, never per recipient. */
export function encode(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

