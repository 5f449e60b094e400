// TS #39 confusable skeletons: two strings that look alike map to the same skeleton.
import { decodeMapping, mapCodePoints } from "./unicode-codec.ts";
import { PROTOTYPES } from "./unicode-data.ts";

const PROTOTYPE = decodeMapping(PROTOTYPES);

/**
 * skeleton(X) of TS #39 for text that is already case-folded, decomposed (NFD) and free of
 * default-ignorable code points: each code point replaced by its prototype, then NFD again.
 * The table only holds code points that survive NFKC and case folding (see the generator).
 */
export function skeleton(foldedNfdText: string): string {
  const mapped = mapCodePoints(foldedNfdText, PROTOTYPE);
  // Unchanged text is still in NFD; prototypes may bring marks that need reordering.
  return mapped === foldedNfdText ? mapped : mapped.normalize("NFD");
}
