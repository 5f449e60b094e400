// A Redis connection that keeps coming back. Bun's client gives up after its retries, so
// we own the loop: commands fail fast while Redis is down (no offline queue: a chat
// message must be refused with store_unavailable, not held), and every reconnect runs the
// caller's `onReconnect` (re-subscribe, replay what was missed).
import { RedisClient } from "bun";

export interface RedisConnectionEvents {
  onUp?: () => void | Promise<void>;
  onDown?: (error: Error) => void;
}

export class RedisConnection {
  readonly client: RedisClient;
  up = false;
  reconnects = 0;
  private closed = false;
  private retryDelay = 100;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private everConnected = false;

  constructor(readonly url: string, private readonly events: RedisConnectionEvents = {}) {
    this.client = new RedisClient(url, { autoReconnect: false, enableOfflineQueue: false, connectionTimeout: 3000 });
    this.client.onconnect = () => {
      this.up = true;
      this.retryDelay = 100;
      if (this.everConnected) this.reconnects++;
      this.everConnected = true;
      void this.events.onUp?.();
    };
    this.client.onclose = (error) => {
      const wasUp = this.up;
      this.up = false;
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
        this.retryDelay = Math.min(this.retryDelay * 2, 3000);
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
