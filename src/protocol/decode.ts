// The one decoder for what clients send: plain text is chat, JSON frames carry `type`.
// Every field is checked here, so the engine only ever sees well-formed frames.
import type { ClientFrame, ClientType, ErrorCode, Ref } from "./frames.ts";

export class ProtocolError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly ref?: Ref) {
    super(message);
  }
}

export interface TextRules {
  maxTextLength: number;
}

/** Epochs are short tokens the server made; anything else is not one of them. */
export const EPOCH = /^[A-Za-z0-9_-]{1,64}$/;
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

function optionalEpoch(obj: Record<string, unknown>, ref: Ref | undefined): string | undefined {
  const v = optionalString(obj, "epoch", ref);
  if (v !== undefined && !EPOCH.test(v)) throw new ProtocolError("bad_field", "epoch must be the string a welcome or joined frame carried", ref);
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
      return { type: t, room: requiredString(obj, "room", ref), since: optionalId(obj, "since", ref), epoch: optionalEpoch(obj, ref), ref };
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

/** The `ref` of a raw frame, if it has a valid one (for answers to frames not decoded). */
export function refOf(raw: string): Ref | undefined {
  if (raw.charCodeAt(0) !== 123 /* { */) return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    return parsed !== null && typeof parsed === "object" && !Array.isArray(parsed) ? readRef(parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
