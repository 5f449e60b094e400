// Rules for user and room names. Names are compared case-insensitively (after Unicode
// normalization) so "Alice" and "alice" cannot both be online and impersonate each other.

// Controls, format characters (zero-width, bidi overrides) and separators other than the
// plain space: in a name they only serve to spoof another name.
const FORBIDDEN_IN_NAME = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}\u00A0\u2000-\u200A\u3000]/u;
const ROOM_NAME = /^[\p{L}\p{N}_.\-]+$/u;
export const MAX_ROOM_LENGTH = 64;

export type NameVerdict = { ok: true; name: string } | { ok: false; reason: string };

export function nameKey(name: string): string {
  return name.normalize("NFKC").toLowerCase();
}

export function checkName(raw: string, maxLength: number): NameVerdict {
  const name = raw.normalize("NFC");
  const length = [...name].length;
  if (length === 0) return { ok: false, reason: "name is empty" };
  if (length > maxLength) return { ok: false, reason: `name is longer than ${maxLength} characters` };
  if (FORBIDDEN_IN_NAME.test(name)) return { ok: false, reason: "name contains control or invisible characters" };
  if (name.trim() !== name) return { ok: false, reason: "name starts or ends with a space" };
  return { ok: true, name };
}

export function checkRoom(raw: string): NameVerdict {
  if (raw.length === 0) return { ok: false, reason: "room name is empty" };
  if (raw.length > MAX_ROOM_LENGTH) return { ok: false, reason: `room name is longer than ${MAX_ROOM_LENGTH} characters` };
  if (!ROOM_NAME.test(raw)) return { ok: false, reason: "room names use letters, digits, '_', '-' and '.'" };
  return { ok: true, name: raw.toLowerCase() };
}

/** A readable random name for clients that did not choose one: user-7f3a. */
export function generatedName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(2));
  return `user-${bytes[0]!.toString(16).padStart(2, "0")}${bytes[1]!.toString(16).padStart(2, "0")}`;
}
