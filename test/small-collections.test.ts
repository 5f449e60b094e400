// The engine's per-connection collections behave as the Map and Set they replace, including
// a loop that removes entries as it goes (a close during a delivery to a person's tabs).
import { describe, expect, test } from "bun:test";
import { SmallMap, SmallSet } from "../src/engine/small.ts";

describe("SmallMap", () => {
  test("answers as a Map does, in insertion order", () => {
    const small = new SmallMap<string, number>();
    const map = new Map<string, number>();
    for (const [k, v] of [["a", 1], ["b", 2], ["a", 3], ["c", 4]] as const) {
      small.set(k, v);
      map.set(k, v);
    }
    expect(small.delete("b")).toBe(map.delete("b"));
    expect(small.delete("zz")).toBe(map.delete("zz"));
    expect(small.size).toBe(map.size);
    expect([...small.keys()]).toEqual([...map.keys()]);
    expect([...small.values()]).toEqual([...map.values()]);
    expect([...small]).toEqual([...map]);
    expect(small.get("a")).toBe(3);
    expect(small.get("b")).toBeUndefined();
    expect(small.has("c")).toBe(true);
    expect(small.keys().next().value).toBe("a");
  });

  test("a loop over the keys may delete them", () => {
    const small = new SmallMap<string, boolean>();
    for (const k of ["x", "y", "z"]) small.set(k, true);
    const seen: string[] = [];
    for (const k of small.keys()) {
      seen.push(k);
      small.delete(k);
    }
    expect(seen).toEqual(["x", "y", "z"]);
    expect(small.size).toBe(0);
  });
});

describe("SmallSet", () => {
  test("adds once, deletes, and a loop that removes the current member visits every other one", () => {
    const set = new SmallSet<number>();
    set.add(1).add(2).add(2).add(3);
    expect(set.size).toBe(3);
    const seen: number[] = [];
    for (const n of set) {
      seen.push(n);
      if (n === 1) set.delete(1);
    }
    expect(seen).toEqual([1, 2, 3]);
    expect([...set]).toEqual([2, 3]);
    expect(set.has(1)).toBe(false);
    expect(set.delete(1)).toBe(false);
  });
});

describe("against Map and Set, over random operations", () => {
  // A seeded sequence (the same every run): adds, overwrites, deletes of the first, a middle
  // and the last entry, and deletes of what is not there.
  function random(seed: number): () => number {
    let s = seed;
    return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  }

  test("SmallMap answers every step as a Map does", () => {
    const next = random(7);
    const small = new SmallMap<string, number>();
    const map = new Map<string, number>();
    for (let step = 0; step < 5000; step++) {
      const key = `k${Math.floor(next() * 6)}`;
      if (next() < 0.55) {
        small.set(key, step);
        map.set(key, step);
      } else expect(small.delete(key)).toBe(map.delete(key));
      expect(small.size).toBe(map.size);
      expect(small.get(key)).toBe(map.get(key));
      expect(small.has(key)).toBe(map.has(key));
      expect([...small]).toEqual([...map]);
    }
  });

  test("SmallSet answers every step as a Set does", () => {
    const next = random(11);
    const small = new SmallSet<number>();
    const set = new Set<number>();
    for (let step = 0; step < 5000; step++) {
      const item = Math.floor(next() * 6);
      if (next() < 0.55) {
        small.add(item);
        set.add(item);
      } else expect(small.delete(item)).toBe(set.delete(item));
      expect(small.size).toBe(set.size);
      expect(small.has(item)).toBe(set.has(item));
      expect([...small]).toEqual([...set]);
    }
  });
});
