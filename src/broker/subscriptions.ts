// The topics a node subscribed to, reference counted, with the newest id delivered on each.
// Both brokers keep their subscriptions here, so "subscribe twice, unsubscribe once, still
// subscribed" and "unsubscribing what is not subscribed is harmless" hold for both. An
// entry exists only while referenced: a room nobody is in costs nothing.

import { CompactMap } from "../engine/compact-map.ts";

interface Waiter {
  seq: number;
  done: (reached: boolean) => void;
}

/** SubscriptionCount.bits: the lowest bit is `establishing`, the rest count references. */
const ESTABLISHING = 1;
const REF = 2;

/**
 * A subscription's reference count and its `establishing` flag, sharing one number, read
 * through accessors. They live on this base class, not on Subscription, because
 * JavaScriptCore sizes an object by its class's own prototype too (each accessor there
 * counts as a field): on Subscription they would take it from 48 bytes to 64.
 */
class SubscriptionCount {
  private bits = REF;

  get refs(): number {
    return this.bits >>> 1;
  }
  set refs(count: number) {
    this.bits = count * REF + (this.bits & ESTABLISHING);
  }

  /**
   * The broker is still learning where the topic stands (a room: its newest id; an inbox:
   * from its first frame). A flag on the entry, not a set beside it: an inbox per person
   * would otherwise cost a set entry per connected person.
   */
  get establishing(): boolean {
    return (this.bits & ESTABLISHING) !== 0;
  }
  set establishing(on: boolean) {
    this.bits = on ? this.bits | ESTABLISHING : this.bits & ~ESTABLISHING;
  }
}

/**
 * One subscribed topic: four fields (48 bytes, where five take 64), for there is one per
 * connected person (their inbox).
 */
export class Subscription extends SubscriptionCount {
  /** Newest message id delivered on this node (room topics; 0 for others). */
  delivered = 0;
  /** Set by the broker while the first subscribe is in flight; later subscribers await it. */
  ready: Promise<void> | null = null;
  waiters: Waiter[] | null = null;
}

export class Subscriptions {
  private readonly entries = new CompactMap<Subscription>();

  /** Add a reference. `first` is true when the topic was not subscribed before. */
  acquire(topic: string): { entry: Subscription; first: boolean } {
    let entry = this.entries.get(topic);
    if (entry) {
      entry.refs++;
      return { entry, first: false };
    }
    entry = new Subscription();
    this.entries.set(topic, entry);
    return { entry, first: true };
  }

  /** Drop a reference; true when it was the last one (the topic is now unsubscribed). */
  release(topic: string): boolean {
    const entry = this.entries.get(topic);
    if (!entry) return false;
    if (--entry.refs > 0) return false;
    this.entries.delete(topic);
    if (entry.waiters) for (const w of entry.waiters) w.done(false);
    return true;
  }

  get(topic: string): Subscription | undefined {
    return this.entries.get(topic);
  }

  has(topic: string): boolean {
    return this.entries.has(topic);
  }

  delivered(topic: string): number {
    return this.entries.get(topic)?.delivered ?? 0;
  }

  /** Record that ids up to `seq` were delivered (never moves backwards). */
  advance(entry: Subscription, seq: number): void {
    if (seq <= entry.delivered) return;
    entry.delivered = seq;
    const waiters = entry.waiters;
    if (!waiters) return;
    const still: Waiter[] = [];
    for (const w of waiters) {
      if (w.seq <= seq) w.done(true);
      else still.push(w);
    }
    entry.waiters = still.length > 0 ? still : null;
  }

  /** Start the mark again at `seq` (history lost: the new epoch's ids are not above the old ones yet). */
  rebase(entry: Subscription, seq: number): void {
    entry.delivered = seq;
  }

  /** Resolves true once `seq` was delivered, false on timeout or when the topic is dropped. */
  waitFor(topic: string, seq: number, timeoutMs: number): Promise<boolean> {
    const entry = this.entries.get(topic);
    if (!entry) return Promise.resolve(false);
    if (entry.delivered >= seq) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (entry.waiters) entry.waiters = entry.waiters.filter((w) => w !== waiter);
        if (entry.waiters?.length === 0) entry.waiters = null;
        resolve(false);
      }, timeoutMs);
      const waiter: Waiter = {
        seq,
        done: (reached) => {
          clearTimeout(timer);
          resolve(reached);
        },
      };
      (entry.waiters ??= []).push(waiter);
    });
  }

  topics(): IterableIterator<string> {
    return this.entries.keys();
  }

  get size(): number {
    return this.entries.size;
  }
}
