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

const UNAVAILABLE = "redis is unavailable";

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

  /**
   * Commands are written once per event-loop turn, all together: Bun's client pipelines
   * what is sent in one tick, but each connect's commands are sent from its own callback,
   * so without this a storm of connects costs a write (and a wake-up of Redis) per command.
   * Order is kept: a turn's commands go in the order they were asked for (a Lua batch where
   * its first request was made; see Lua.batched).
   */
  send(command: string, args: string[], beforeWrite?: () => void): Promise<unknown> {
    if (!this.up) return Promise.reject(new Error(UNAVAILABLE));
    return new Promise((resolve, reject) => {
      this.queued.push({ command, args, resolve, reject, beforeWrite });
      if (this.queued.length === 1) setImmediate(this.flush);
    });
  }

  private queued: { command: string; args: string[]; resolve: (value: unknown) => void; reject: (error: unknown) => void; beforeWrite: (() => void) | undefined }[] = [];

  private readonly flush = (): void => {
    const batch = this.queued;
    this.queued = [];
    for (const c of batch) {
      // Until now the command's arguments could still grow (Lua's batches): no longer.
      c.beforeWrite?.();
      if (!this.up) c.reject(new Error(UNAVAILABLE));
      else this.client.send(c.command, c.args).then(c.resolve, c.reject);
    }
  };

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.client.close();
  }
}
