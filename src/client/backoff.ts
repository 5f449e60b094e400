// Reconnect delays: exponential backoff with full jitter (a uniformly random delay between
// 0 and the exponential ceiling). After a server restart every client would otherwise come
// back at the same instants; spread over the whole window they arrive as a trickle.

export interface BackoffOptions {
  /** Ceiling of the first delay, in ms (default 500). */
  initialDelayMs?: number;
  /** Largest ceiling, in ms (default 15 000). */
  maxDelayMs?: number;
  /** A uniform random number in [0, 1): injectable so tests can pin the jitter. */
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  private readonly initial: number;
  private readonly max: number;
  private readonly random: () => number;

  constructor(options: BackoffOptions = {}) {
    this.initial = Math.max(1, options.initialDelayMs ?? 500);
    this.max = Math.max(this.initial, options.maxDelayMs ?? 15_000);
    this.random = options.random ?? Math.random;
  }

  /** Failed attempts since the last success. */
  get attempts(): number {
    return this.attempt;
  }

  /** The ceiling of the next delay: initial · 2^attempt, at most max. */
  ceiling(): number {
    // 2^attempt overflows nothing before the cap: the exponent stops growing at 30.
    return Math.min(this.max, this.initial * 2 ** Math.min(this.attempt, 30));
  }

  /** The delay before the next attempt, and count the attempt. */
  next(): number {
    const delay = Math.floor(this.random() * this.ceiling());
    this.attempt++;
    return delay;
  }

  /** A connection succeeded: the next failure starts from the initial delay again. */
  reset(): void {
    this.attempt = 0;
  }
}
