// How the terminal client shows things: one line per event, names coloured (the same name
// always the same colour) when writing to a terminal, plain text otherwise or with NO_COLOR.

// No red: red is for errors.
const PALETTE = [32, 33, 34, 35, 36, 92, 93, 94, 95, 96];

export interface Style {
  name(name: string): string;
  dim(text: string): string;
  bold(text: string): string;
  error(text: string): string;
}

export function useColour(stream: { isTTY?: boolean }, env: Record<string, string | undefined> = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0") return true;
  return stream.isTTY === true;
}

export function style(colour: boolean): Style {
  const wrap = (code: number | string, text: string) => (colour ? `\x1b[${code}m${text}\x1b[0m` : text);
  return {
    name: (name) => wrap(PALETTE[hash(name) % PALETTE.length]!, name),
    dim: (text) => wrap(2, text),
    bold: (text) => wrap(1, text),
    error: (text) => wrap(31, text),
  };
}

function hash(text: string): number {
  let h = 0;
  for (const ch of text) h = (Math.imul(h, 31) + ch.codePointAt(0)!) >>> 0;
  return h;
}

export function clock(ts: number): string {
  const d = new Date(ts);
  return `${String(d.getHours()).padStart(2, "0")}:${String(d.getMinutes()).padStart(2, "0")}`;
}
