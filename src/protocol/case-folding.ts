// Full Unicode case folding, which JavaScript lacks: toLowerCase() is lower-casing, not
// folding, and the two differ where it matters for names ("ΑΣ" lower-cases to "ας" but "ασ"
// stays "ασ"; "ß" stays "ß" where folding gives "ss"; Cherokee folds to upper case).
import { decodeMapping, mapCodePoints } from "./unicode-codec.ts";
import { CASE_FOLDING } from "./unicode-data.ts";

const FOLDING = decodeMapping(CASE_FOLDING);

/**
 * The full case folding (CaseFolding.txt C+F) of NFKD text, in NFD. The table is closed
 * under compatibility decomposition, so this is Unicode's compatibility caseless form.
 */
export function foldCase(nfkdText: string): string {
  const folded = mapCodePoints(nfkdText, FOLDING);
  // Unchanged text is still decomposed; a folding may need its marks reordered.
  return folded === nfkdText ? folded : folded.normalize("NFD");
}
