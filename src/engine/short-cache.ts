// One read shared by everyone who asks for the same thing within a few milliseconds: a
// storm of joins into one room would otherwise ask the store once per joiner (the room's
// tail, its count and names).

export class ShortCache<V> {
  private readonly entries = new Map<string, { at: number; variant: number; value: Promise<V> }>();

  /** `max`: keys remembered at once; beyond, the oldest go (a storm touches few keys). */
  constructor(private readonly ttlMs: number, private readonly max = 1000) {}

  /**
   * What `load` gave for `key` (asked the same way: `variant`, e.g. a page size) less than
   * the TTL ago, else a new load. A failed load is not kept: the next caller asks again.
   */
  get(key: string, variant: number, load: () => Promise<V>): Promise<V> {
    const now = performance.now();
    const hit = this.entries.get(key);
    if (hit && hit.variant === variant && now - hit.at < this.ttlMs) return hit.value;
    const value = load();
    value.catch(() => this.entries.get(key)?.value === value && this.entries.delete(key));
    this.entries.delete(key);
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { at: now, variant, value });
    return value;
  }

  forget(key: string): void {
    this.entries.delete(key);
  }
}
