// A string-keyed map for the tables a node keeps one entry per person in (people by id and
// by name, inbox subscriptions, the cluster directory's own people). JavaScriptCore's Map
// grows its table in steps: measured alone, an entry costs about 25 bytes of heap at
// 16,000 entries but 150–210 between 16,385 and 20,000, and a worker of a
// 100,000-connection node holds about 16,700 people. Here the keys and values sit in two
// plain arrays (and their hashes in a third, typed) addressed by open addressing (linear
// probing) and filled to at most three quarters: about 40 bytes per entry at 16,700 (25–55
// as the table fills and doubles; up to 160 in a table shrunk to an eighth full), keys
// shared with the caller's strings, nothing allocated per entry.
//
// The hash is FNV-1a over the key's UTF-16 code units with a per-process random seed, so
// the layout of one process cannot be precomputed by someone choosing names. Iteration
// order follows the layout, so it must never reach clients: it would let someone search
// for the seed and then choose names that collide. Deleting shifts the entries that
// follow back (no tombstones), so lookups never slow down with churn. Iteration goes over
// a copy of the keys and skips those deleted meanwhile, as a Map's would; entries added
// meanwhile are not visited.

const MIN_CAPACITY = 8;
/** Grow past three quarters full; shrink below one eighth (never below MIN_CAPACITY). */
const GROW_AT = 0.75;
const SHRINK_AT = 0.125;

const SEED = crypto.getRandomValues(new Uint32Array(1))[0]! | 0;

function hash(key: string): number {
  let h = SEED ^ 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  // Mix the high bits down: the table takes the low bits.
  return (h ^ (h >>> 15)) | 0;
}

function emptySlots<T>(capacity: number): (T | undefined)[] {
  // Allocated at its size and filled: one block, and no holes for reads to look past.
  return new Array<T | undefined>(capacity).fill(undefined);
}

export class CompactMap<V> {
  private keyAt: (string | undefined)[] = emptySlots(MIN_CAPACITY);
  private valueAt: (V | undefined)[] = emptySlots(MIN_CAPACITY);
  /** Each key's hash, kept: probes compare numbers, and moving an entry does not hash again. */
  private hashAt = new Int32Array(MIN_CAPACITY);
  private count = 0;
  /** Counts moves of entries between slots (inserts, deletes, resizes): an iteration that
   * sees it unchanged reads the slots it copied, without looking each key up again. */
  private layout = 0;

  get size(): number {
    return this.count;
  }

  /** The slot holding `key`, or the empty slot where it would go, as ~slot. */
  private find(key: string, h: number): number {
    const keys = this.keyAt;
    const hashes = this.hashAt;
    const mask = keys.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const at = keys[i];
      if (at === undefined) return ~i;
      // The stored hash first: a number compared, not two strings.
      if (hashes[i] === h && at === key) return i;
    }
  }

  has(key: string): boolean {
    return this.find(key, hash(key)) >= 0;
  }

  get(key: string): V | undefined {
    const i = this.find(key, hash(key));
    return i >= 0 ? this.valueAt[i] : undefined;
  }

  set(key: string, value: V): this {
    const h = hash(key);
    let i = this.find(key, h);
    if (i >= 0) {
      this.valueAt[i] = value;
      return this;
    }
    if (this.count + 1 > this.keyAt.length * GROW_AT) {
      this.resize(this.keyAt.length * 2);
      i = this.find(key, h);
    }
    i = ~i;
    this.keyAt[i] = key;
    this.valueAt[i] = value;
    this.hashAt[i] = h;
    this.count++;
    this.layout++;
    return this;
  }

  delete(key: string): boolean {
    let hole = this.find(key, hash(key));
    if (hole < 0) return false;
    const keys = this.keyAt;
    const values = this.valueAt;
    const hashes = this.hashAt;
    const mask = keys.length - 1;
    // Close the hole: an entry further on moves into it unless its home slot lies
    // cyclically after the hole (then a lookup starting there would not pass the hole).
    for (let i = (hole + 1) & mask; keys[i] !== undefined; i = (i + 1) & mask) {
      const home = hashes[i]! & mask;
      const stays = hole <= i ? hole < home && home <= i : hole < home || home <= i;
      if (stays) continue;
      keys[hole] = keys[i];
      values[hole] = values[i];
      hashes[hole] = hashes[i]!;
      hole = i;
    }
    keys[hole] = undefined;
    values[hole] = undefined;
    this.count--;
    this.layout++;
    if (this.keyAt.length > MIN_CAPACITY && this.count < this.keyAt.length * SHRINK_AT) this.resize(this.keyAt.length / 2);
    return true;
  }

  private resize(capacity: number): void {
    this.layout++;
    const keys = this.keyAt;
    const values = this.valueAt;
    const hashes = this.hashAt;
    this.keyAt = emptySlots(capacity);
    this.valueAt = emptySlots(capacity);
    this.hashAt = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let j = 0; j < keys.length; j++) {
      const key = keys[j];
      if (key === undefined) continue;
      let i = hashes[j]! & mask;
      while (this.keyAt[i] !== undefined) i = (i + 1) & mask;
      this.keyAt[i] = key;
      this.valueAt[i] = values[j];
      this.hashAt[i] = hashes[j]!;
    }
  }

  /** The slots of the entries present when it began, each yielded only while still present. */
  private *slots(): Generator<number> {
    const keys: string[] = [];
    const slots: number[] = [];
    const layout = this.layout;
    for (let i = 0; i < this.keyAt.length; i++) {
      if (this.keyAt[i] === undefined) continue;
      keys.push(this.keyAt[i]!);
      slots.push(i);
    }
    for (let j = 0; j < keys.length; j++) {
      if (this.layout === layout) {
        yield slots[j]!;
        continue;
      }
      // Entries moved since the copy: look the key up (deleted: a Map would not show it either).
      const i = this.find(keys[j]!, hash(keys[j]!));
      if (i >= 0) yield i;
    }
  }

  *entries(): IterableIterator<[string, V]> {
    for (const i of this.slots()) yield [this.keyAt[i]!, this.valueAt[i]!];
  }

  *keys(): IterableIterator<string> {
    for (const i of this.slots()) yield this.keyAt[i]!;
  }

  *values(): IterableIterator<V> {
    for (const i of this.slots()) yield this.valueAt[i]!;
  }

  [Symbol.iterator](): IterableIterator<[string, V]> {
    return this.entries();
  }
}
