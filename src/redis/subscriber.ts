// The pub/sub connection. Bun's client keeps a channel's listeners across a reconnect, so
// subscribing again after one doubles every message; and `unsubscribe` throws (not
// rejects) on a client that is not in subscriber mode. So: a fresh RedisClient for every
// connection, and one reconciler that brings that client's channels to the wanted set, one
// step at a time. Nothing else ever calls subscribe or unsubscribe, so no interleaving of
// joins, leaves, closes and reconnects can subscribe a channel twice or unsubscribe one
// that is not subscribed.
import { RedisClient } from "bun";
import { BrokerUnavailable } from "../engine/ports.ts";
import { RETRY_MAX_MS, RETRY_MIN_MS } from "./connection.ts";

type Listener = (message: string, channel: string) => void;

export interface SubscriberEvents {
  /** Connected again after a drop, every wanted channel subscribed: fill what was missed. */
  onResubscribed?: () => void;
  onDown?: (error: Error) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (error: Error) => void;
}

const DOWN = "the message bus is unavailable";

export class RedisSubscriber {
  private client: RedisClient | null = null;
  up = false;
  reconnects = 0;
  /** Channels the engine wants, and those subscribed on the current client. */
  private readonly wanted = new Set<string>();
  private subscribed = new Set<string>();
  private readonly waiters = new Map<string, Waiter[]>();
  private reconciling = false;
  private dirty = false;
  private closed = false;
  private retryDelay = RETRY_MIN_MS;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private everUp = false;

  constructor(private readonly url: string, private readonly listener: Listener, private readonly events: SubscriberEvents = {}) {}

  /** First connection: throws if Redis cannot be reached. */
  async connect(): Promise<void> {
    await this.open();
  }

  private async open(): Promise<void> {
    const client = new RedisClient(this.url, { autoReconnect: false, enableOfflineQueue: false, connectionTimeout: 3000 });
    client.onclose = (error) => this.dropped(client, error);
    await client.connect();
    if (this.closed) {
      client.close();
      return;
    }
    const again = this.everUp;
    this.client = client;
    this.subscribed = new Set();
    this.up = true;
    this.everUp = true;
    this.retryDelay = RETRY_MIN_MS;
    if (again) this.reconnects++;
    await this.reconcile();
    if (again && this.client === client) this.events.onResubscribed?.();
  }

  private dropped(client: RedisClient, error: Error): void {
    if (this.client !== client) return;
    this.client = null;
    this.subscribed = new Set();
    const wasUp = this.up;
    this.up = false;
    for (const [channel, list] of this.waiters) {
      this.waiters.delete(channel);
      for (const w of list) w.reject(new BrokerUnavailable(DOWN));
    }
    if (this.closed) return;
    if (wasUp) this.events.onDown?.(error);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(async () => {
      this.timer = null;
      try {
        await this.open();
      } catch {
        this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
        this.scheduleReconnect();
      }
    }, this.retryDelay);
    this.timer.unref?.();
  }

  /**
   * Want a channel. Resolves once it is subscribed on a live connection; rejects with
   * BrokerUnavailable while Redis is down (the channel stays wanted and comes back with
   * the connection).
   */
  want(channel: string): Promise<void> {
    this.wanted.add(channel);
    if (this.subscribed.has(channel)) return Promise.resolve();
    if (!this.up) return Promise.reject(new BrokerUnavailable(DOWN));
    const done = new Promise<void>((resolve, reject) => {
      let list = this.waiters.get(channel);
      if (!list) this.waiters.set(channel, (list = []));
      list.push({ resolve, reject });
    });
    void this.reconcile();
    return done;
  }

  /** Stop wanting a channel. Never throws. */
  unwant(channel: string): void {
    if (!this.wanted.delete(channel)) return;
    // Whoever waited for it has let go of it already; tell them it is done either way.
    const list = this.waiters.get(channel);
    this.waiters.delete(channel);
    if (list) for (const w of list) w.resolve();
    void this.reconcile();
  }

  /** Channels subscribed on the live connection (tests, /healthz). */
  get channels(): number {
    return this.subscribed.size;
  }

  /** Bring the current client's subscriptions to the wanted set; one run at a time. */
  private async reconcile(): Promise<void> {
    if (this.reconciling) {
      this.dirty = true;
      return;
    }
    this.reconciling = true;
    try {
      do {
        this.dirty = false;
        const client = this.client;
        if (!client || !this.up) return;
        const add = [...this.wanted].filter((c) => !this.subscribed.has(c));
        const remove = [...this.subscribed].filter((c) => !this.wanted.has(c));
        if (add.length > 0) {
          try {
            await client.subscribe(add, this.listener);
          } catch {
            return; // the connection dropped: `dropped` resets, the reconnect reconciles
          }
          if (this.client !== client) return;
          for (const channel of add) {
            this.subscribed.add(channel);
            const list = this.waiters.get(channel);
            this.waiters.delete(channel);
            if (list) for (const w of list) w.resolve();
          }
        }
        if (remove.length > 0) {
          for (const channel of remove) this.subscribed.delete(channel);
          try {
            await client.unsubscribe(remove);
          } catch {
            // Throws synchronously when the client left subscriber mode: nothing to undo.
          }
          if (this.client !== client) return;
        }
      } while (this.dirty);
    } finally {
      this.reconciling = false;
    }
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const client = this.client;
    this.client = null;
    this.up = false;
    client?.close();
  }
}
