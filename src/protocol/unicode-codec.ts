// The compact text format of the generated Unicode tables (unicode-data.ts), written by
// unicode-data.build.ts and read once at module load. Tables are lists of whole numbers
// (code points, or gaps and lengths between them) packed as base-32 digits: the last digit
// of each number comes from a second alphabet, so no separators are needed and a table
// stays plain ASCII (nothing invisible or right-to-left in the source, reviewable diffs).

const FINAL_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdef";
const MORE_DIGITS = "ghijklmnopqrstuvwxyz0123456789+/";
const DIGIT_VALUE = new Int8Array(128).fill(-1);
for (let i = 0; i < 32; i++) {
  DIGIT_VALUE[FINAL_DIGITS.charCodeAt(i)] = i;
  DIGIT_VALUE[MORE_DIGITS.charCodeAt(i)] = 32 + i;
}

export function encodeNumbers(numbers: readonly number[]): string {
  let out = "";
  for (const n of numbers) {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`cannot encode ${n}`);
    let digits = FINAL_DIGITS[n % 32]!;
    for (let rest = Math.floor(n / 32); rest > 0; rest = Math.floor(rest / 32)) digits = MORE_DIGITS[rest % 32]! + digits;
    out += digits;
  }
  return out;
}

export function decodeNumbers(text: string): number[] {
  const numbers: number[] = [];
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const digit = DIGIT_VALUE[text.charCodeAt(i)] ?? -1;
    if (digit < 0) throw new SyntaxError(`bad digit at ${i} in a Unicode table`);
    if (digit < 32) {
      numbers.push(n * 32 + digit);
      n = 0;
    } else {
      n = n * 32 + digit - 32;
    }
  }
  if (n !== 0) throw new SyntaxError("a Unicode table ends inside a number");
  return numbers;
}

/** Sorted, disjoint [first, last] ranges, each with a value: as gap, length-1, value. */
export interface ValuedRange {
  first: number;
  last: number;
  value: number;
}

export function encodeRanges(ranges: readonly ValuedRange[]): string {
  const numbers: number[] = [];
  let next = 0;
  for (const { first, last, value } of ranges) {
    if (first < next || last < first) throw new RangeError(`ranges out of order at ${first}`);
    numbers.push(first - next, last - first, value);
    next = last + 1;
  }
  return encodeNumbers(numbers);
}

/** Decoded ranges as parallel arrays, for a binary search by first code point. */
export interface RangeTable {
  firsts: Uint32Array;
  lasts: Uint32Array;
  values: Uint32Array;
  /** The range found last: the next code point of a text is usually in it too. */
  lastHit: number;
}

export function decodeRanges(text: string): RangeTable {
  const numbers = decodeNumbers(text);
  const count = numbers.length / 3;
  const table: RangeTable = { firsts: new Uint32Array(count), lasts: new Uint32Array(count), values: new Uint32Array(count), lastHit: 0 };
  let next = 0;
  for (let i = 0; i < count; i++) {
    const first = next + numbers[3 * i]!;
    const last = first + numbers[3 * i + 1]!;
    table.firsts[i] = first;
    table.lasts[i] = last;
    table.values[i] = numbers[3 * i + 2]!;
    next = last + 1;
  }
  return table;
}

/** The value of the range holding `codePoint`, or -1 where no range does. */
export function rangeValue(table: RangeTable, codePoint: number): number {
  const hit = table.lastHit;
  if (codePoint >= table.firsts[hit]! && codePoint <= table.lasts[hit]!) return table.values[hit]!;
  let low = 0;
  let high = table.firsts.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    if (codePoint < table.firsts[middle]!) high = middle - 1;
    else if (codePoint > table.lasts[middle]!) low = middle + 1;
    else {
      table.lastHit = middle;
      return table.values[middle]!;
    }
  }
  return -1;
}

// A mapping from code points to strings: source gap, target length, then the target's code
// points, each as a zigzag difference from the one before (the source, for the first), since
// targets mostly sit near their source (case pairs) or are a handful of ASCII letters.
const zigzag = (n: number) => (n >= 0 ? 2 * n : -2 * n - 1);
const unzigzag = (n: number) => (n % 2 === 0 ? n / 2 : -(n + 1) / 2);

export function encodeMapping(mapping: ReadonlyMap<number, string>): string {
  const numbers: number[] = [];
  let next = 0;
  for (const source of [...mapping.keys()].sort((a, b) => a - b)) {
    const target = [...mapping.get(source)!].map((c) => c.codePointAt(0)!);
    numbers.push(source - next, target.length);
    let previous = source;
    for (const codePoint of target) {
      numbers.push(zigzag(codePoint - previous));
      previous = codePoint;
    }
    next = source + 1;
  }
  return encodeNumbers(numbers);
}

export function decodeMapping(text: string): Map<number, string> {
  const numbers = decodeNumbers(text);
  const mapping = new Map<number, string>();
  let next = 0;
  for (let i = 0; i < numbers.length; ) {
    const source = next + numbers[i++]!;
    const length = numbers[i++]!;
    let previous = source;
    let target = "";
    for (let k = 0; k < length; k++) {
      previous += unzigzag(numbers[i++]!);
      target += String.fromCodePoint(previous);
    }
    mapping.set(source, target);
    next = source + 1;
  }
  return mapping;
}

/** `text` with each code point in `mapping` replaced; the same string when none is. */
export function mapCodePoints(text: string, mapping: ReadonlyMap<number, string>): string {
  let mapped = "";
  let copiedUpTo = 0;
  for (let i = 0; i < text.length; i++) {
    const codePoint = text.codePointAt(i)!;
    const end = codePoint > 0xffff ? i + 2 : i + 1;
    const target = mapping.get(codePoint);
    if (target !== undefined) {
      mapped += text.slice(copiedUpTo, i) + target;
      copiedUpTo = end;
    }
    i = end - 1;
  }
  return copiedUpTo === 0 ? text : mapped + text.slice(copiedUpTo);
}
