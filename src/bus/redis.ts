// The Redis bus: frames cross nodes through Redis pub/sub. A node subscribes to a topic's
// channel only while it has local subscribers, and hands each arriving frame to Bun's
// native publish: one Redis message per node, not per recipient. A node's own publishes
// come back through its subscription too, so every node delivers in Redis's one order.
import type { RedisConnection } from "../cluster/redis-connection.ts";
import { CHANNEL_PREFIX, keys } from "../cluster/keys.ts";
import type { Metrics } from "../obs/metrics.ts";
import type { Bus, Deliver } from "./bus.ts";
import { Counter } from "../obs/metrics.ts";

export class RedisBus implements Bus {
  private readonly channels = new Set<string>();
  readonly published = new Counter("bunchat_redis_published_total", "frames published to Redis");
  readonly received = new Counter("bunchat_redis_received_total", "frames received from Redis");
  private readonly listener = (message: string, channel: string) => {
    this.received.inc();
    const newline = message.indexOf("\n");
    const seq = Number(message.slice(0, newline));
    this.deliver(channel.slice(CHANNEL_PREFIX.length), message.slice(newline + 1), seq);
  };

  constructor(
    private readonly commands: RedisConnection,
    private readonly subscriber: RedisConnection,
    private readonly deliver: Deliver,
    metrics?: Metrics,
  ) {
    metrics?.add(this.published);
    metrics?.add(this.received);
  }

  publish(topic: string, frame: string, seq = 0): void {
    this.published.inc();
    // Fire and forget: presence, typing and nick frames are not stored, so there is
    // nothing to refuse; a failure while Redis is down is counted by the connection.
    this.commands.send("PUBLISH", [keys.channel(topic), `${seq}\n${frame}`]).catch(() => {});
  }

  async interest(topic: string, wanted: boolean): Promise<void> {
    const channel = keys.channel(topic);
    if (wanted) {
      if (this.channels.has(channel)) return;
      this.channels.add(channel);
      if (this.subscriber.up) await this.subscriber.client.subscribe(channel, this.listener).catch(() => {});
    } else {
      if (!this.channels.delete(channel)) return;
      if (this.subscriber.up) await this.subscriber.client.unsubscribe(channel, this.listener).catch(() => {});
    }
  }

  /** After a reconnect the server has forgotten our subscriptions: make them again. */
  async resubscribe(): Promise<void> {
    if (this.channels.size === 0) return;
    await this.subscriber.client.subscribe([...this.channels], this.listener);
  }

  /** Topics this node listens to (for replaying what a Redis outage made it miss). */
  topics(): string[] {
    return [...this.channels].map((c) => c.slice(CHANNEL_PREFIX.length));
  }

  async close(): Promise<void> {
    this.channels.clear();
  }
}
