// CompactMap against the Map it stands in for: the same answers after any sequence of
// sets and deletes (growing, shrinking, and deleting out of long probe runs), and
// iteration that tolerates deletes as a Map's does.
import { describe, expect, test } from "bun:test";
import { CompactMap } from "../src/engine/compact-map.ts";

/** A small deterministic generator (mulberry32), so a failure replays. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function expectSame(compact: CompactMap<number>, model: Map<string, number>): void {
  expect(compact.size).toBe(model.size);
  for (const [key, value] of model) expect(compact.get(key)).toBe(value);
  const seen = [...compact].sort(([a], [b]) => (a < b ? -1 : 1));
  const wanted = [...model].sort(([a], [b]) => (a < b ? -1 : 1));
  expect(seen).toEqual(wanted);
}

describe("CompactMap", () => {
  test("answers as a Map does after random sets and deletes over a small set of keys", () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const next = random(seed);
      const compact = new CompactMap<number>();
      const model = new Map<string, number>();
      // Few keys, many operations: the table fills, empties, and its runs collide often.
      const pool = Array.from({ length: 300 }, (_, i) => `k${i}`);
      for (let op = 0; op < 20_000; op++) {
        const key = pool[Math.floor(next() * pool.length)]!;
        // Phases that mostly add, then mostly delete, so the table grows and shrinks.
        const adding = Math.floor(op / 2_500) % 2 === 0 ? 0.8 : 0.2;
        if (next() < adding) {
          compact.set(key, op);
          model.set(key, op);
        } else {
          expect(compact.delete(key)).toBe(model.delete(key));
        }
        expect(compact.has(key)).toBe(model.has(key));
        expect(compact.get(key)).toBe(model.get(key));
        if (op % 997 === 0) expectSame(compact, model);
      }
      expectSame(compact, model);
    }
  });

  test("holds tens of thousands of entries and gives every one back", () => {
    const compact = new CompactMap<number>();
    for (let i = 0; i < 40_000; i++) compact.set(`a${i.toString(36)}`, i);
    expect(compact.size).toBe(40_000);
    for (let i = 0; i < 40_000; i += 7) expect(compact.get(`a${i.toString(36)}`)).toBe(i);
    for (let i = 0; i < 40_000; i += 2) expect(compact.delete(`a${i.toString(36)}`)).toBe(true);
    expect(compact.size).toBe(20_000);
    for (let i = 0; i < 40_000; i++) expect(compact.get(`a${i.toString(36)}`)).toBe(i % 2 === 0 ? undefined : i);
    for (let i = 1; i < 40_000; i += 2) compact.delete(`a${i.toString(36)}`);
    expect(compact.size).toBe(0);
    expect([...compact]).toEqual([]);
  });

  test("a set of a key already present replaces its value and keeps the size", () => {
    const compact = new CompactMap<string>();
    compact.set("alice", "one").set("alice", "two");
    expect(compact.size).toBe(1);
    expect(compact.get("alice")).toBe("two");
    expect(compact.delete("bob")).toBe(false);
    expect(compact.has("")).toBe(false);
    compact.set("", "empty key");
    expect(compact.get("")).toBe("empty key");
  });

  test("iteration skips entries deleted meanwhile and visits every other one once", () => {
    const compact = new CompactMap<number>();
    for (let i = 0; i < 1_000; i++) compact.set(`p${i}`, i);
    const visited: number[] = [];
    for (const [key, value] of compact) {
      visited.push(value);
      // Deleting as we go, the entry itself and one still ahead (or behind): shifting
      // entries back must neither skip nor repeat one.
      compact.delete(key);
      compact.delete(`p${(value + 500) % 1_000}`);
    }
    expect(new Set(visited).size).toBe(visited.length);
    expect(visited.length).toBe(500);
    expect(compact.size).toBe(0);
  });

  test("iteration shows a value replaced meanwhile, and visits a key deleted and set again once", () => {
    const compact = new CompactMap<number>();
    for (let i = 0; i < 50; i++) compact.set(`v${i}`, i);
    const order: [string, number][] = [];
    let movedAt = -1;
    for (const [key, value] of compact) {
      order.push([key, value]);
      // Replacing values moves no entry: the slots copied at the start are read as they are.
      for (let i = 0; i < 50; i++) if (i !== movedAt && !order.some(([k]) => k === `v${i}`)) compact.set(`v${i}`, 1_000 + i);
      // Deleting a key not visited yet and setting it again moves entries: it is looked up.
      if (order.length === 25) {
        const ahead = [...Array(50).keys()].map((i) => `v${i}`).find((k) => !order.some(([seen]) => seen === k))!;
        compact.delete(ahead);
        compact.set(ahead, 2_000);
        movedAt = Number(ahead.slice(1));
      }
    }
    expect(order.length).toBe(50);
    expect(new Set(order.map(([k]) => k)).size).toBe(50);
    const [first, ...rest] = order;
    expect(first![1]).toBe(Number(first![0].slice(1)));
    for (const [key, value] of rest) {
      const i = Number(key.slice(1));
      expect(value).toBe(i === movedAt ? 2_000 : 1_000 + i);
    }
  });

  test("keys and values iterate the same entries", () => {
    const compact = new CompactMap<number>();
    for (let i = 0; i < 100; i++) compact.set(`r${i}`, i);
    expect([...compact.keys()].sort()).toEqual([...compact].map(([k]) => k).sort());
    expect([...compact.values()].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});
