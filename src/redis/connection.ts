// A Redis command connection that keeps coming back. Bun's client gives up after its
// retries, so we own the loop: commands fail fast while Redis is down (no offline queue: a
// chat message must be refused with store_unavailable, not held), and every reconnect runs
// the owner's `onUp` (re-read the epoch, re-announce this node's people). Pub/sub has its
// own connection class (subscriber.ts): Bun keeps listeners across a reconnect.
import { RedisClient } from "bun";

export interface RedisConnectionEvents {
  onUp?: () => void | Promise<void>;
  onDown?: (error: Error) => void;
}

/** Backoff between reconnection attempts: doubling from 100 ms, at most 3 s. */
export const RETRY_MIN_MS = 100;
export const RETRY_MAX_MS = 3000;

export class RedisConnection {
  readonly client: RedisClient;
  up = false;
  reconnects = 0;
  private closed = false;
  private retryDelay = RETRY_MIN_MS;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private everConnected = false;

  constructor(readonly url: string, private readonly events: RedisConnectionEvents = {}) {
    this.client = new RedisClient(url, { autoReconnect: false, enableOfflineQueue: false, connectionTimeout: 3000 });
    this.client.onconnect = () => {
      this.up = true;
      this.retryDelay = RETRY_MIN_MS;
      if (this.everConnected) this.reconnects++;
      this.everConnected = true;
      void this.events.onUp?.();
    };
    this.client.onclose = (error) => {
      const wasUp = this.up;
      this.up = false;
      // A clean stop is not an outage: no warning, no reconnect.
      if (this.closed) return;
      if (wasUp) this.events.onDown?.(error);
      this.scheduleReconnect();
    };
  }

  /** First connection: throws (for a clear start-up error) if Redis cannot be reached. */
  async connect(): Promise<void> {
    await this.client.connect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(async () => {
      this.timer = null;
      try {
        await this.client.connect();
      } catch {
        this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
        this.scheduleReconnect();
      }
    }, this.retryDelay);
    this.timer.unref?.();
  }

  send(command: string, args: string[]): Promise<unknown> {
    if (!this.up) return Promise.reject(new Error("redis is unavailable"));
    return this.client.send(command, args);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.client.close();
  }
}
