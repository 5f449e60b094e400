// Collections for the handful of entries one connection or one person holds (its rooms, a
// person's tabs). JavaScriptCore gives even an empty-ish Map or Set a hash table of about
// 600 bytes; at 100,000 connections three of them per connection were most of the server's
// memory per connection. Here the first entry sits in fields of the collection itself and
// only the others in an array, made when a second one arrives: most connections are in one
// room and most people have one tab, and they pay for one small object, not an object, an
// array and its storage. Lookups are linear, over at most MAX_ROOMS_PER_CONNECTION or
// MAX_CONNECTIONS_PER_USER entries.
//
// Iteration goes over a copy, so entries may be added or removed meanwhile (as with a
// Map, removing one never makes the loop skip another).

/** Where a key is: FIRST (the inline entry), ABSENT, or 1 + its key's index in `rest`. */
const ABSENT = -1;
const FIRST = 0;

/** What an empty collection holds inline (no field counts entries: JavaScriptCore sizes objects by field). */
const NONE: unique symbol = Symbol("none");

/** A Map of a few entries, in insertion order. */
export class SmallMap<K, V> {
  private firstKey: K | typeof NONE = NONE;
  private firstValue: V | undefined = undefined;
  /** The entries after the first: keys and values alternate. */
  private rest: (K | V)[] | null = null;

  get size(): number {
    if (this.firstKey === NONE) return 0;
    return 1 + (this.rest ? this.rest.length >> 1 : 0);
  }

  private find(key: K): number {
    if (this.firstKey === NONE) return ABSENT;
    if (this.firstKey === key) return FIRST;
    const rest = this.rest;
    if (rest) for (let i = 0; i < rest.length; i += 2) if (rest[i] === key) return i + 1;
    return ABSENT;
  }

  has(key: K): boolean {
    return this.find(key) !== ABSENT;
  }

  get(key: K): V | undefined {
    const at = this.find(key);
    if (at === ABSENT) return undefined;
    return at === FIRST ? this.firstValue : (this.rest![at] as V);
  }

  set(key: K, value: V): this {
    const at = this.find(key);
    if (at === FIRST) this.firstValue = value;
    else if (at !== ABSENT) this.rest![at] = value;
    else if (this.firstKey === NONE) {
      this.firstKey = key;
      this.firstValue = value;
    } else (this.rest ??= []).push(key, value);
    return this;
  }

  delete(key: K): boolean {
    const at = this.find(key);
    if (at === ABSENT) return false;
    const rest = this.rest;
    if (at === FIRST) {
      // The next entry moves up, so the order stays the insertion order.
      this.firstKey = rest ? (rest[0] as K) : NONE;
      this.firstValue = rest ? (rest[1] as V) : undefined;
      if (rest) rest.splice(0, 2);
    } else rest!.splice(at - 1, 2);
    if (this.rest?.length === 0) this.rest = null;
    return true;
  }

  private list(): [K, V][] {
    const list: [K, V][] = [];
    if (this.firstKey === NONE) return list;
    list.push([this.firstKey, this.firstValue as V]);
    const rest = this.rest;
    if (rest) for (let i = 0; i < rest.length; i += 2) list.push([rest[i] as K, rest[i + 1] as V]);
    return list;
  }

  keys(): IterableIterator<K> {
    return this.list().map(([k]) => k).values();
  }

  values(): IterableIterator<V> {
    return this.list().map(([, v]) => v).values();
  }

  entries(): IterableIterator<[K, V]> {
    return this.list().values();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}

/** A Set of a few members, in insertion order. */
export class SmallSet<T> {
  private first: T | typeof NONE = NONE;
  /** The members after the first. */
  private rest: T[] | null = null;

  get size(): number {
    if (this.first === NONE) return 0;
    return 1 + (this.rest ? this.rest.length : 0);
  }

  has(item: T): boolean {
    if (this.first === NONE) return false;
    return this.first === item || (this.rest !== null && this.rest.includes(item));
  }

  add(item: T): this {
    if (this.has(item)) return this;
    if (this.first === NONE) this.first = item;
    else (this.rest ??= []).push(item);
    return this;
  }

  delete(item: T): boolean {
    if (this.first === NONE) return false;
    const rest = this.rest;
    if (this.first === item) {
      this.first = rest ? rest.shift()! : NONE;
    } else {
      const i = rest ? rest.indexOf(item) : -1;
      if (i === -1) return false;
      rest!.splice(i, 1);
    }
    if (this.rest?.length === 0) this.rest = null;
    return true;
  }

  [Symbol.iterator](): IterableIterator<T> {
    if (this.first === NONE) return ([] as T[]).values();
    return (this.rest ? [this.first, ...this.rest] : [this.first]).values();
  }
}
