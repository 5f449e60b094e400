// Collections for the handful of entries one connection or one person holds (its rooms, a
// person's tabs). JavaScriptCore gives even an empty-ish Map or Set a hash table of about
// 600 bytes; at 100,000 connections three of them per connection were most of the server's
// memory per connection. One small array does the same job: lookups are linear, over at
// most MAX_ROOMS_PER_CONNECTION or MAX_CONNECTIONS_PER_USER entries.
//
// Iteration goes over a copy, so entries may be added or removed meanwhile (as with a
// Map, removing one never makes the loop skip another).

/** A Map of a few entries: keys and values alternate in one array. */
export class SmallMap<K, V> {
  private readonly pairs: (K | V)[] = [];

  get size(): number {
    return this.pairs.length >> 1;
  }

  private indexOf(key: K): number {
    for (let i = 0; i < this.pairs.length; i += 2) if (this.pairs[i] === key) return i;
    return -1;
  }

  has(key: K): boolean {
    return this.indexOf(key) !== -1;
  }

  get(key: K): V | undefined {
    const i = this.indexOf(key);
    return i === -1 ? undefined : (this.pairs[i + 1] as V);
  }

  set(key: K, value: V): this {
    const i = this.indexOf(key);
    if (i === -1) this.pairs.push(key, value);
    else this.pairs[i + 1] = value;
    return this;
  }

  delete(key: K): boolean {
    const i = this.indexOf(key);
    if (i === -1) return false;
    this.pairs.splice(i, 2);
    return true;
  }

  keys(): IterableIterator<K> {
    return (this.pairs.filter((_, i) => i % 2 === 0) as K[]).values();
  }

  values(): IterableIterator<V> {
    return (this.pairs.filter((_, i) => i % 2 === 1) as V[]).values();
  }

  entries(): IterableIterator<[K, V]> {
    const list: [K, V][] = [];
    for (let i = 0; i < this.pairs.length; i += 2) list.push([this.pairs[i] as K, this.pairs[i + 1] as V]);
    return list.values();
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}

/** A Set of a few members. */
export class SmallSet<T> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  has(item: T): boolean {
    return this.items.includes(item);
  }

  add(item: T): this {
    if (!this.items.includes(item)) this.items.push(item);
    return this;
  }

  delete(item: T): boolean {
    const i = this.items.indexOf(item);
    if (i === -1) return false;
    this.items.splice(i, 1);
    return true;
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.items.slice().values();
  }
}
