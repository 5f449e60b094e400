// The key names are compared and stored by: two names collide iff their keys are equal. It
// runs on every connect, so ASCII names (nearly all of them) take a per-character table.
import { foldCase } from "./case-folding.ts";
import { skeleton } from "./confusables.ts";

const DEFAULT_IGNORABLE = /\p{Default_Ignorable_Code_Point}/gu;

/**
 * TS #39 skeleton of the full case folding of the NFKC form, ignoring what renders as
 * nothing. (Folding starts from NFKD, the same text as NFKC but already decomposed as the
 * skeleton wants it: one normalization less.)
 */
export function fullNameKey(name: string): string {
  return skeleton(foldCase(name.replace(DEFAULT_IGNORABLE, "").normalize("NFKD")));
}

// Safe because ASCII is its own NFKC, folds and maps one character at a time, and no ASCII
// character's key holds a combining mark that NFD could reorder across a neighbour.
const ASCII_KEYS = Array.from({ length: 128 }, (_, c) => fullNameKey(String.fromCharCode(c)));

/**
 * A name already in its key's form (most: lowercase ASCII) is its own key, the same string:
 * a person held by the server keeps one string for both, not two.
 */
export function nameKey(name: string): string {
  let key = "";
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 128) return sharingName(fullNameKey(name), name);
    key += ASCII_KEYS[c]!;
  }
  return sharingName(key, name);
}

/** A key equal to its name, as the name's own string (a key that came apart from it, e.g. from Redis, too). */
export function sharingName(key: string, name: string): string {
  return key === name ? name : key;
}
