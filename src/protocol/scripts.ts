// Which writing systems a name uses, by TS #39's "highly restrictive" level: one script
// (Common and Inherited characters, such as digits and punctuation, go with any), or Latin
// with Han and Hiragana/Katakana, Han and Bopomofo, or Han and Hangul. Mixing any others is
// how a Cyrillic "а" hides inside a Latin "alice".
import { decodeNumbers, decodeRanges, rangeValue } from "./unicode-codec.ts";
import { SCRIPT_NAMES, SCRIPT_RANGES, SCRIPT_SETS } from "./unicode-data.ts";

const RANGES = decodeRanges(SCRIPT_RANGES);
const WORDS = Math.ceil(SCRIPT_NAMES.length / 32);
const script = (name: string) => {
  const index = SCRIPT_NAMES.indexOf(name);
  if (index < 0) throw new Error(`no script ${name} in unicode-data.ts`);
  return index;
};
const LATIN = script("Latin");
const CJK_WRITING = [script("Han with Bopomofo"), script("Japanese"), script("Korean")];

/** Each script set as a bit set, and the script that names it (the code point's own). */
const SET_BITS: Uint32Array[] = [];
const SET_NAMED_BY: number[] = [];
{
  const numbers = decodeNumbers(SCRIPT_SETS);
  for (let i = 0; i < numbers.length; ) {
    const bits = new Uint32Array(WORDS);
    const count = numbers[i++]!;
    SET_NAMED_BY.push(count > 0 ? numbers[i]! : -1);
    for (let k = 0; k < count; k++) {
      const index = numbers[i++]!;
      bits[index >>> 5]! |= 1 << (index & 31);
    }
    SET_BITS.push(bits);
  }
}
const ANY_SCRIPT = 0;

const has = (bits: Uint32Array, index: number) => (bits[index >>> 5]! & (1 << (index & 31))) !== 0;
const intersect = (into: Uint32Array, bits: Uint32Array) => {
  for (let w = 0; w < WORDS; w++) into[w]! &= bits[w]!;
};
const isEmpty = (bits: Uint32Array) => bits.every((word) => word === 0);

export type ScriptProblem = { kind: "unassigned" } | { kind: "mixed"; scripts: string[] };

// Scratch sets reused by every call (JavaScript runs one call at a time).
const resolved = new Uint32Array(WORDS);
const resolvedWithoutLatin = new Uint32Array(WORDS);

/** Null when every code point is assigned (Unicode 17.0) and the scripts may go together. */
export function scriptProblem(text: string): ScriptProblem | null {
  // Most names keep to one script set: settle those without any set arithmetic.
  let onlySet = ANY_SCRIPT;
  let oneSet = true;
  for (let i = 0; i < text.length; i++) {
    const codePoint = text.codePointAt(i)!;
    if (codePoint > 0xffff) i++;
    const set = rangeValue(RANGES, codePoint);
    if (set < 0) return { kind: "unassigned" };
    if (set === ANY_SCRIPT || set === onlySet) continue;
    if (onlySet === ANY_SCRIPT) onlySet = set;
    else oneSet = false;
  }
  return oneSet ? null : mixedScripts(text);
}

function mixedScripts(text: string): ScriptProblem | null {
  resolved.fill(0xffffffff);
  resolvedWithoutLatin.fill(0xffffffff);
  const named: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const codePoint = text.codePointAt(i)!;
    if (codePoint > 0xffff) i++;
    const set = rangeValue(RANGES, codePoint);
    if (set === ANY_SCRIPT) continue;
    const bits = SET_BITS[set]!;
    intersect(resolved, bits);
    // TS #39 5.2: the Han/Japanese/Korean combinations may add Latin, so test them without it.
    if (!has(bits, LATIN)) intersect(resolvedWithoutLatin, bits);
    const name = SET_NAMED_BY[set]!;
    if (!named.includes(name)) named.push(name);
  }
  if (!isEmpty(resolved)) return null;
  if (CJK_WRITING.some((writing) => has(resolvedWithoutLatin, writing))) return null;
  return { kind: "mixed", scripts: named.map((index) => SCRIPT_NAMES[index]!) };
}
