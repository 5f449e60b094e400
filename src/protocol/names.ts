// Rules for user and room names. A name is shown as given (NFC), but compared by nameKey: its
// case-folded, look-alike-mapped form, so "ALICE", Cyrillic "асе" or "paypaI" with a capital
// I cannot be online beside "alice", "ace" or "paypal". What a key cannot catch is refused
// here: characters that draw nothing, stacked marks, and scripts mixed in one name.
import { scriptProblem } from "./scripts.ts";

export { nameKey, sharingName } from "./name-key.ts";

// Characters that draw nothing, so "alice" with one appended looks like "alice": every
// default-ignorable code point (zero-width spaces and joiners, variation selectors, Hangul
// fillers, Khmer inherent vowels, tags…) plus blank-looking ones that Unicode does not mark
// default-ignorable: the blank Braille pattern and the musical null notehead.
const INVISIBLE = /[\p{Default_Ignorable_Code_Point}\u2800\u{1D159}]/u;
// Controls, the remaining format characters (bidi and Arabic number marks), private use,
// lone surrogates and line or paragraph separators: in a name they only serve to spoof.
const CONTROL_OR_FORMAT = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}\p{Zl}\p{Zp}]/u;
const ODD_SPACE = /(?! )\p{Zs}/u;
// The three above in one pass, for the names that have none of them.
const ANY_FORBIDDEN = new RegExp([INVISIBLE, CONTROL_OR_FORMAT, ODD_SPACE].map((r) => r.source).join("|"), "u");
const LEADING_MARK = /^\p{M}/u;
// TS #39 5.4: the same nonspacing mark twice in a row (an "é" with a second accent drawn on
// top), or more than four in a row, draws like a different name.
const STACKED_MARKS = /(\p{Mn})\1|\p{Mn}{5}/u;
const NONSPACING_MARK = /\p{Mn}/u;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

const ROOM_NAME = /^[\p{L}\p{N}_.\-]+$/u;
export const MAX_ROOM_LENGTH = 64;

export type NameVerdict = { ok: true; name: string } | { ok: false; reason: string };

const refuse = (reason: string): NameVerdict => ({ ok: false, reason });

export function checkName(raw: string, maxLength: number): NameVerdict {
  const name = raw.normalize("NFC");
  const ascii = PRINTABLE_ASCII.test(name);
  const length = ascii ? name.length : codePointCount(name);
  if (length === 0) return refuse("name is empty");
  if (length > maxLength) return refuse(`name is longer than ${maxLength} characters`);
  if (!ascii && ANY_FORBIDDEN.test(name)) {
    if (INVISIBLE.test(name)) return refuse("name contains invisible characters");
    if (CONTROL_OR_FORMAT.test(name)) return refuse("name contains control, format or private-use characters");
    if (ODD_SPACE.test(name)) return refuse("name contains a space other than the plain space");
  }
  if (name.trim() !== name) return refuse("name starts or ends with a space");
  // Web pages collapse runs of spaces: "a  b" would show as "a b".
  if (name.includes("  ")) return refuse("name contains consecutive spaces");
  if (ascii) return { ok: true, name };
  if (LEADING_MARK.test(name)) return refuse("name starts with a combining mark");
  // Precomposed letters carry at most one of each mark and fewer than five: only names that
  // still show a nonspacing mark after NFC can stack them.
  if (NONSPACING_MARK.test(name) && STACKED_MARKS.test(name.normalize("NFD"))) return refuse("name stacks combining marks");
  const problem = scriptProblem(name);
  if (problem?.kind === "unassigned") return refuse("name contains unassigned characters");
  if (problem?.kind === "mixed") return refuse(`name mixes scripts that look alike (${listed(problem.scripts)})`);
  return { ok: true, name };
}

function codePointCount(text: string): number {
  let count = text.length;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        count--;
        i++;
      }
    }
  }
  return count;
}

const listed = (items: readonly string[]) => (items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`);

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
