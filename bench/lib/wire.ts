// How load clients speak to each kind of target. bunchat answers with JSON frames; the
// reference peers broadcast the plain text they receive. The load payload is plain text
// either way: "L|<publisher>|<seq>|<sent at, ms>|<padding>".

export type TargetKind = "bunchat" | "peer";

export const now = (): number => performance.timeOrigin + performance.now();

/** Padding as chat text looks (it compresses like chat does, unlike a run of one letter). */
const PROSE =
  "The meeting moved to Thursday afternoon, so bring the notes from last week and the draft of the release plan. " +
  "I pushed the fix for the login page; can someone check it on a phone? Lunch is at the usual place, twelve thirty. " +
  "Does anyone know why the build takes twice as long since Monday? I think the cache is cold after the upgrade. ";

export function payload(publisher: number, seq: number, size: number, prose = false): string {
  const head = `L|${publisher}|${seq}|${now().toFixed(3)}|`;
  if (size <= head.length) return head;
  if (!prose) return head + "x".repeat(size - head.length);
  const from = (seq * 37 + publisher * 11) % PROSE.length;
  let pad = "";
  while (pad.length < size - head.length) pad += PROSE.slice(from) + PROSE;
  return head + pad.slice(0, size - head.length);
}

export interface Parsed {
  publisher: number;
  seq: number;
  sentAt: number;
}

/** The load payload inside a received frame, or null for any other frame. */
export function extract(kind: TargetKind, frame: string): Parsed | null {
  let text = frame;
  if (kind === "bunchat") {
    // A cheap scan instead of JSON.parse: our payload has no characters JSON escapes.
    if (!frame.startsWith('{"type":"message"') && !frame.startsWith('{"type":"private"')) return null;
    const at = frame.indexOf('"text":"');
    if (at < 0) return null;
    text = frame.slice(at + 8, frame.indexOf('"', at + 8));
  } else if (text.charCodeAt(0) === 64 /* @ */) {
    text = text.slice(text.indexOf(" ") + 1);
  }
  if (!text.startsWith("L|")) return null;
  const a = text.indexOf("|", 2);
  const b = text.indexOf("|", a + 1);
  const c = text.indexOf("|", b + 1);
  return { publisher: Number(text.slice(2, a)), seq: Number(text.slice(a + 1, b)), sentAt: Number(text.slice(b + 1, c)) };
}

/** A private message to `to` in the target's dialect. */
export function privateFrame(kind: TargetKind, to: string, text: string): string {
  return kind === "bunchat" ? JSON.stringify({ type: "private", to, text }) : `@${to} ${text}`;
}

/** Whether a frame is the server's greeting (bunchat's welcome); peers greet by opening. */
export function isWelcome(kind: TargetKind, frame: string): boolean {
  return kind === "bunchat" && frame.startsWith('{"type":"welcome"');
}
