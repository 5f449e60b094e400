// Every frame of the bunchat protocol, both directions, and the one decoder for what
// clients send. docs/PROTOCOL.md is the prose twin of this file.

export type Ref = string | number;

// ---- client → server -------------------------------------------------------------

export type ClientFrame =
  | { type: "chat"; room?: string; text: string; ref?: Ref }
  | { type: "private"; to: string; text: string; ref?: Ref }
  | { type: "join"; room: string; since?: number; ref?: Ref }
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
  ref?: Ref;
}

export interface PrivateFrame {
  type: "private";
  id: number;
  from: string;
  to: string;
  text: string;
  ts: number;
  ref?: Ref;
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
  | "bad_name"
  | "name_taken"
  | "name_locked"
  | "history_off"
  | "store_unavailable"
  | "shutting_down"
  | "internal";

export type ServerFrame =
  | { type: "welcome"; you: { id: string; name: string }; room: string; online: number; members: string[]; history: HistoryItem[]; rooms: string[] }
  | { type: "joined"; room: string; online: number; members: string[]; history: HistoryItem[]; more: boolean; ref?: Ref }
  | { type: "left"; room: string; ref?: Ref }
  | MessageFrame
  | PrivateFrame
  | { type: "presence"; room: string; joined: string[]; left: string[]; online: number; truncated?: true }
  | { type: "typing"; room: string; from: string }
  | { type: "nick"; room: string; from: string; name: string }
  | { type: "history"; room?: string; with?: string; messages: HistoryItem[]; more: boolean; ref?: Ref }
  | { type: "who"; room: string; online: number; members: string[]; ref?: Ref }
  | { type: "error"; code: ErrorCode; message: string; ref?: Ref }
  | { type: "pong"; ref?: Ref; ts: number }
  | { type: "system"; text: string };

/** JSON text of a server frame: call once per publish, never per recipient. */
export function encode(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

// ---- decoding ----------------------------------------------------------------------

export class ProtocolError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly ref?: Ref) {
    super(message);
  }
}

export interface TextRules {
  maxTextLength: number;
}

const KNOWN_TYPES = new Set<string>(["chat", "private", "join", "leave", "nick", "typing", "history", "who", "ping"]);
// C0/C1 controls other than tab and newline; a chat line with them is garbage or an attack on terminals.
const CONTROL_IN_TEXT = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;

/** Accept a message body: non-empty after trimming, within the cap, no control characters. */
export function validateText(value: unknown, rules: TextRules, ref?: Ref): string {
  if (typeof value !== "string") throw new ProtocolError("bad_field", "text must be a string", ref);
  if (value.trim().length === 0) throw new ProtocolError("empty_text", "text is empty", ref);
  if (value.length > rules.maxTextLength) throw new ProtocolError("text_too_long", `text is longer than ${rules.maxTextLength} characters`, ref);
  if (CONTROL_IN_TEXT.test(value)) throw new ProtocolError("bad_field", "text contains control characters", ref);
  // Text frames are valid UTF-8, but a JSON escape like "\ud800" can still smuggle in a lone surrogate.
  if (!value.isWellFormed()) throw new ProtocolError("bad_field", "text is not valid Unicode", ref);
  return value;
}

function optionalString(obj: Record<string, unknown>, key: string, ref: Ref | undefined): string | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new ProtocolError("bad_field", `${key} must be a string`, ref);
  return v;
}

function requiredString(obj: Record<string, unknown>, key: string, ref: Ref | undefined): string {
  const v = optionalString(obj, key, ref);
  if (v === undefined) throw new ProtocolError("bad_field", `${key} is required`, ref);
  return v;
}

function optionalId(obj: Record<string, unknown>, key: string, ref: Ref | undefined, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new ProtocolError("bad_field", `${key} must be a whole number from 0 to ${max}`, ref);
  }
  return v;
}

function readRef(obj: Record<string, unknown>): Ref | undefined {
  const r = obj.ref;
  if (typeof r === "string" && r.length <= 64) return r;
  if (typeof r === "number" && Number.isFinite(r)) return r;
  return undefined;
}

/**
 * Decode one text frame. Plain text (anything not starting with `{`) is a chat message to
 * the current room, as in the classic tutorial; JSON frames carry `type`.
 */
export function decode(raw: string, rules: TextRules): ClientFrame {
  if (raw.charCodeAt(0) !== 123 /* { */) {
    return { type: "chat", text: validateText(raw, rules) };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new ProtocolError("bad_json", "frame is not valid JSON");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new ProtocolError("bad_frame", "frame must be a JSON object");
  }
  const obj = parsed as Record<string, unknown>;
  const ref = readRef(obj);
  if (obj.ref !== undefined && ref === undefined) throw new ProtocolError("bad_field", "ref must be a string of at most 64 characters or a number");
  const type = obj.type;
  if (typeof type !== "string") throw new ProtocolError("bad_frame", "frame has no type", ref);
  if (!KNOWN_TYPES.has(type)) throw new ProtocolError("unknown_type", `unknown type "${type.slice(0, 32)}"`, ref);
  const t = type as ClientType;
  switch (t) {
    case "chat":
      return { type: t, room: optionalString(obj, "room", ref), text: validateText(obj.text, rules, ref), ref };
    case "private":
      return { type: t, to: requiredString(obj, "to", ref), text: validateText(obj.text, rules, ref), ref };
    case "join":
      return { type: t, room: requiredString(obj, "room", ref), since: optionalId(obj, "since", ref), ref };
    case "leave":
      return { type: t, room: requiredString(obj, "room", ref), ref };
    case "nick":
      return { type: t, name: requiredString(obj, "name", ref), ref };
    case "typing":
      return { type: t, room: optionalString(obj, "room", ref), ref };
    case "history":
      return {
        type: t,
        room: optionalString(obj, "room", ref),
        with: optionalString(obj, "with", ref),
        before: optionalId(obj, "before", ref),
        limit: optionalId(obj, "limit", ref, 1000),
        ref,
      };
    case "who":
      return { type: t, room: optionalString(obj, "room", ref), ref };
    case "ping":
      return { type: t, ref };
  }
}
