// Token bucket per connection, four numbers made at its first frame (a connection that only
// listens keeps none); the check is arithmetic, not an allocation. Drops beyond the bucket
// are counted in a 10 s window; too many means sustained abuse and the caller closes the
// connection with 1008.

export interface RateState {
  tokens: number;
  refilledAt: number;
  dropped: number;
  droppedWindowStart: number;
}

export type RateVerdict = "ok" | "limited" | "abusive";

/** What keeps a bucket: a connection, whose bucket is made at its first frame. */
export interface RateHolder {
  rate: RateState | null;
}

const ABUSE_WINDOW_MS = 10_000;

export class RateLimiter {
  private readonly capacity: number;
  constructor(private readonly perSecond: number, burst: number, private readonly abuseDrops: number) {
    this.capacity = burst > 0 ? burst : perSecond;
  }

  /**
   * One frame from `holder`. With the limit off nothing is read or made; a bucket made now
   * is full, as one made at connect would be by now.
   */
  take(holder: RateHolder): RateVerdict {
    if (this.perSecond <= 0) return "ok";
    const now = Date.now();
    const state = (holder.rate ??= { tokens: this.capacity, refilledAt: now, dropped: 0, droppedWindowStart: now });
    const elapsed = now - state.refilledAt;
    if (elapsed > 0) {
      state.tokens = Math.min(this.capacity, state.tokens + (elapsed * this.perSecond) / 1000);
      state.refilledAt = now;
    }
    if (state.tokens >= 1) {
      state.tokens -= 1;
      return "ok";
    }
    if (now - state.droppedWindowStart > ABUSE_WINDOW_MS) {
      state.droppedWindowStart = now;
      state.dropped = 0;
    }
    state.dropped++;
    return this.abuseDrops > 0 && state.dropped >= this.abuseDrops ? "abusive" : "limited";
  }
}
