// The Redis broker: one Lua call per message stores it in the conversation's stream,
// gives it the next id and publishes it to the topics' channels, atomically. Every node
// subscribed to a room's channel receives the frame once and fans it out to its local
// sockets in native code; ids are the delivery order on every node.
//
// Room ids are consecutive within an epoch, so a node notices any frame it did not
// receive (a pub/sub connection dropped, a frame lost in the reconnect): it holds the live
// frames of that room, reads what it missed from the stream, delivers it in order, then
// the held frames. After a reconnect it checks every subscribed room the same way.
import type { Logger } from "../obs/log.ts";
import { Counter, type Metrics } from "../obs/metrics.ts";
import type { HistoryItem } from "../protocol/frames.ts";
import { encode } from "../protocol/frames.ts";
import { Subscriptions, type Subscription } from "../broker/subscriptions.ts";
import { newEpoch } from "../broker/store.ts";
import type { Broker, Deliver, Page, PendingMessage, PrivateMessage, RoomMessage } from "../engine/ports.ts";
import { BrokerUncertain, BrokerUnavailable, InboxFull } from "../engine/ports.ts";
import { REPLAY_MAX } from "../engine/replay.ts";
import { conversationOf, inboxConversation, inboxesOf, sequenceOf, topics, toInboxItem, toItem } from "../engine/topics.ts";
import type { RedisConnection } from "./connection.ts";
import { CHANNEL_PREFIX, keys } from "./keys.ts";
import { Lua } from "./lua.ts";
import { ENSURE_EPOCH, PUBLISH_PRIVATE, PUBLISH_ROOM } from "./scripts.ts";
import { RedisSubscriber } from "./subscriber.ts";

type StreamEntry = [string, string[]];

interface Held {
  seq: number;
  frame: string;
}

export interface RedisBrokerOptions {
  /** This node's id: inbox frames for its people come on its own channel. */
  nodeId: string;
  /** Messages kept per conversation (stream MAXLEN ~); 0 = unlimited. */
  limit: number;
  metrics?: Metrics;
  log: Logger;
}

const UNAVAILABLE = "the chat store (Redis) is unavailable";
/** An inbox has nothing to wait for (see route): one settled promise serves them all. */
const ROUTED: Promise<void> = Promise.resolve();
/** Inboxes remembered with frames that came before anyone here listened (see `unheard`). */
const UNHEARD_MAX = 10_000;

export class RedisBroker implements Broker {
  readonly keepsHistory = true;
  private deliver: Deliver = () => {};
  private readonly subscriptions = new Subscriptions();
  readonly subscriber: RedisSubscriber;
  /**
   * Inbox frames routed here while nobody on this node was subscribed: the newest position
   * per inbox. Redis routes a person's frames here from their admission on, and the
   * connection subscribes only once it opens; what came in between is not delivered, so
   * the subscribe counts it in `delivered` and the engine reads it from the store. Bounded:
   * the window is a handshake long (or a close's, until Redis forgets the connection).
   */
  private readonly unheard = new Map<string, number>();
  /** Room topics being filled from the stream, with the live frames held meanwhile. */
  private readonly filling = new Map<string, Held[]>();
  private epochId = "";
  private epochRefresh: Promise<void> | null = null;
  /** Highest id this node has seen in any conversation: where ids continue after a loss. */
  private maxSeen = 0;
  private readonly lua: Lua;
  private readonly inFlight = new Set<Promise<unknown>>();
  readonly published = new Counter("bunchat_redis_published_total", "frames published to Redis");
  readonly received = new Counter("bunchat_redis_received_total", "frames received from Redis");
  readonly gapsFilled = new Counter("bunchat_redis_gaps_filled_total", "messages a node missed live and delivered from the stream");

  /** This node's channel for every inbox frame it routes. */
  private readonly inboxChannel: string;

  constructor(private readonly commands: RedisConnection, url: string, private readonly options: RedisBrokerOptions) {
    this.lua = new Lua(commands, [PUBLISH_ROOM, PUBLISH_PRIVATE, ENSURE_EPOCH]);
    this.inboxChannel = keys.nodeChannel(options.nodeId);
    this.subscriber = new RedisSubscriber(url, this.onMessage, {
      onResubscribed: () => this.checkEveryRoom(),
      onDown: (error) => options.log.warn("redis_down", { connection: "subscriber", error: error.message }),
    });
    options.metrics?.add(this.published);
    options.metrics?.add(this.received);
    options.metrics?.add(this.gapsFilled);
  }

  /** Connect the subscriber and learn the epoch; throws when Redis cannot be reached. */
  async start(): Promise<void> {
    await this.subscriber.connect();
    await this.subscriber.want(this.inboxChannel);
    await this.reconnected();
  }

  /** The command connection is back (or new): Redis may have restarted empty. */
  async reconnected(): Promise<void> {
    await this.lua.load();
    await this.refreshEpoch();
  }

  epoch(): string {
    return this.epochId;
  }

  onDeliver(deliver: Deliver): void {
    this.deliver = deliver;
  }

  private seen(id: number): void {
    if (id > this.maxSeen) this.maxSeen = id;
  }

  /** Read (or create) the epoch; when it changed, the floor rises above what we saw. */
  private refreshEpoch(): Promise<void> {
    this.epochRefresh ??= (async () => {
      try {
        const reply = (await this.lua.run(ENSURE_EPOCH, [keys.epoch], [newEpoch(), String(this.maxSeen), this.epochId])) as [string, string];
        const [id, floor] = reply;
        const lost = this.epochId !== "" && id !== this.epochId;
        if (lost) this.options.log.warn("redis_history_lost", { epoch: id, previous: this.epochId, idsContinueAbove: Number(floor) });
        this.epochId = id;
        if (lost) await this.rebaseMarks();
      } finally {
        this.epochRefresh = null;
      }
    })();
    return this.epochRefresh;
  }

  /**
   * The old epoch's marks say nothing about the new epoch's ids, which may be lower (another
   * node started the epoch before this one raised the floor): every sequenced topic starts
   * again from 0 and is filled from the new stream, so what the new epoch holds reaches
   * this node's sockets (a frame this node delivered since the loss may come twice; none
   * is lost).
   */
  private async rebaseMarks(): Promise<void> {
    for (const topic of [...this.subscriptions.topics()]) {
      const entry = this.subscriptions.get(topic);
      if (!entry || sequenceOf(topic) === null || this.filling.has(topic)) continue;
      this.subscriptions.rebase(entry, 0);
      entry.establishing = false;
      void this.fill(topic, entry, []);
    }
  }

  // ---- publishing --------------------------------------------------------------------

  publish(message: PendingMessage): Promise<HistoryItem> {
    const work = this.store(message);
    // Graceful stop waits for publishes already on their way to Redis.
    this.inFlight.add(work);
    const forget = () => this.inFlight.delete(work);
    work.then(forget, forget);
    return work;
  }

  private async store(message: PendingMessage): Promise<HistoryItem> {
    const run = message.kind === "room" ? (epoch: string) => this.storeRoom(message, epoch) : (epoch: string) => this.storePrivate(message, epoch);
    let id: number;
    try {
      id = Number(await run(this.epochId));
    } catch (error) {
      if (String(error).includes("INBOX_FULL")) throw new InboxFull("the recipient is away and their inbox is full");
      if (!String(error).includes("EPOCH")) throw this.unavailable(error);
      // Redis lost its data since we last looked: learn the new epoch, then try once more.
      try {
        await this.refreshEpoch();
        id = Number(await run(this.epochId));
      } catch (again) {
        if (String(again).includes("INBOX_FULL")) throw new InboxFull("the recipient is away and their inbox is full");
        throw this.unavailable(again);
      }
    }
    this.seen(id);
    this.published.inc();
    this.options.metrics?.stored.inc();
    return toItem(message, id);
  }

  private storeRoom(message: RoomMessage, epoch: string): Promise<unknown> {
    // Encode once with id 0, then let the script splice the real id in.
    const [before, after] = around(encode(toItem(message, 0)), '"id":0');
    return this.lua.run(PUBLISH_ROOM, [keys.seq(message.room), keys.log(message.room), keys.epoch], [
      epoch, before, after, String(this.options.limit), keys.channel(topics.room(message.room)),
    ]);
  }

  private storePrivate(message: PrivateMessage, epoch: string): Promise<unknown> {
    const conversation = conversationOf(message);
    const [before, after] = around(encode(toItem(message, 0)), '"id":0');
    // The inboxes' copy: the same message, its position there spliced in as well.
    const [inboxBefore, rest] = around(encode(toInboxItem(message, 0, 0)), '"id":0');
    const [middle, inboxAfter] = aroundLast(rest, '"box":0');
    const owners = inboxesOf(message);
    const inboxKeys = owners.flatMap((owner) => [keys.seq(inboxConversation(owner)), keys.log(inboxConversation(owner))]);
    return this.lua.run(PUBLISH_PRIVATE, [keys.seq(conversation), keys.log(conversation), keys.epoch, ...inboxKeys], [
      epoch, before, after, String(this.options.limit), inboxBefore, middle, inboxAfter,
      owners[0]!, owners[1] ?? "", String(message.queue?.cap ?? 0), String(message.queue?.delivered ?? 0),
    ]);
  }

  private unavailable(error: unknown): BrokerUnavailable {
    this.options.metrics?.storeErrors.inc();
    if (error instanceof BrokerUnavailable) return error;
    const text = `${UNAVAILABLE}: ${error instanceof Error ? error.message : String(error)}`;
    // Sent, then the connection went: Redis may have run it. (A command refused before
    // sending — Redis already down — fails with our own error, not this code.)
    return (error as { code?: string }).code === "ERR_REDIS_CONNECTION_CLOSED" ? new BrokerUncertain(text) : new BrokerUnavailable(text);
  }

  broadcast(topic: string, frame: string): void {
    this.published.inc();
    // Fire and forget: presence, typing and nick frames are not stored, so there is
    // nothing to refuse; a failure while Redis is down is counted by the connection.
    this.commands.send("PUBLISH", [keys.channel(topic), `0\n${frame}`]).catch(() => {});
  }

  // ---- subscriptions -----------------------------------------------------------------

  subscribe(topic: string): Promise<void> {
    const { entry, first } = this.subscriptions.acquire(topic);
    if (first) entry.ready = topics.inboxOf(topic) !== null ? this.route(topic, entry) : this.establish(topic, entry);
    return entry.ready!;
  }

  /**
   * An inbox has no channel of its own: its frames come on this node's channel, because
   * the Directory's claim recorded the person's connection here (bc:conns), which is where
   * PUBLISH_PRIVATE sends them — from the moment of the claim, before the connection even
   * opened. So there is nothing to ask Redis: what came before the claim is below the head
   * the claim reported, what came since is here (`unheard`, counted as delivered so the
   * engine reads it from the stream), and the first live frame sets the delivered mark.
   */
  private route(topic: string, entry: Subscription): Promise<void> {
    entry.establishing = true;
    const unheard = this.unheard.get(topic);
    if (unheard !== undefined) {
      this.unheard.delete(topic);
      this.subscriptions.advance(entry, unheard);
    }
    return ROUTED;
  }

  /** Subscribe the channel, then learn the topic's newest id: from there on, every id comes here. */
  private async establish(topic: string, entry: Subscription): Promise<void> {
    const conversation = sequenceOf(topic);
    if (conversation !== null) entry.establishing = true;
    try {
      await this.subscriber.want(keys.channel(topic));
      if (conversation === null) return;
      let head: number;
      try {
        head = Number((await this.commands.send("GET", [keys.seq(conversation)])) ?? 0);
      } catch (error) {
        throw this.unavailable(error);
      }
      if (this.subscriptions.get(topic) !== entry) return;
      this.seen(head);
      this.subscriptions.advance(entry, head);
    } finally {
      if (conversation !== null) entry.establishing = false;
    }
  }

  unsubscribe(topic: string): void {
    if (!this.subscriptions.release(topic)) return;
    this.filling.delete(topic);
    if (topics.inboxOf(topic) === null) this.subscriber.unwant(keys.channel(topic));
  }

  delivered(topic: string): number {
    return this.subscriptions.delivered(topic);
  }

  deliveredUpTo(topic: string, seq: number, timeoutMs: number): Promise<boolean> {
    return this.subscriptions.waitFor(topic, seq, timeoutMs);
  }

  /** Topics subscribed on this node (tests, /healthz). */
  subscribedTopics(): number {
    return this.subscriptions.size;
  }

  // ---- delivery ----------------------------------------------------------------------

  private readonly onMessage = (message: string, channel: string): void => {
    this.received.inc();
    const newline = message.indexOf("\n");
    const seq = Number(message.slice(0, newline));
    let topic: string;
    let frame: string;
    if (channel === this.inboxChannel) {
      // "box\nu:<person>\nframe": an inbox frame for someone this node routes. The "u:"
      // stays on the wire, so nodes of the release before, whose inbox topics had it, read it.
      const second = message.indexOf("\n", newline + 1);
      const owner = message.startsWith("u:", newline + 1) ? newline + 3 : newline + 1;
      topic = topics.inbox(message.slice(owner, second));
      frame = message.slice(second + 1);
    } else {
      topic = channel.slice(CHANNEL_PREFIX.length);
      frame = message.slice(newline + 1);
    }
    const entry = this.subscriptions.get(topic);
    if (!entry) {
      // Unsubscribed while the frame was on its way, or not subscribed yet (see `unheard`).
      if (seq > 0 && channel === this.inboxChannel) this.rememberUnheard(topic, seq);
      return;
    }
    if (seq === 0) return this.deliver(topic, frame, 0);
    this.seen(seq);
    this.sequence(topic, entry, seq, frame);
  };

  private rememberUnheard(topic: string, seq: number): void {
    this.unheard.delete(topic);
    if (this.unheard.size >= UNHEARD_MAX) this.unheard.delete(this.unheard.keys().next().value!);
    this.unheard.set(topic, seq);
  }

  /** Deliver a room's or an inbox's frame in id order, filling any gap from the stream first. */
  private sequence(topic: string, entry: Subscription, seq: number, frame: string): void {
    const held = this.filling.get(topic);
    if (held) {
      held.push({ seq, frame });
      return;
    }
    if (seq <= entry.delivered) return; // already delivered from the stream
    if (entry.establishing) {
      // An inbox learns where it stands from its first frame.
      if (topics.inboxOf(topic) !== null) entry.establishing = false;
      return this.emit(topic, entry, seq, frame);
    }
    if (seq === entry.delivered + 1) return this.emit(topic, entry, seq, frame);
    void this.fill(topic, entry, [{ seq, frame }]);
  }

  private emit(topic: string, entry: Subscription, seq: number, frame: string): void {
    this.subscriptions.advance(entry, seq);
    this.deliver(topic, frame, seq);
  }

  /**
   * Deliver what the stream has after the last delivered id, then the frames held while
   * reading. Best effort: what the stream no longer has (trimmed) cannot be delivered, and
   * a read that fails (Redis down again) is retried by the next reconnect's check.
   */
  private async fill(topic: string, entry: Subscription, held: Held[]): Promise<void> {
    const conversation = sequenceOf(topic)!;
    this.filling.set(topic, held);
    try {
      for (let round = 0; round < 10; round++) {
        const entries = await this.readAfter(conversation, entry.delivered, REPLAY_MAX);
        if (this.subscriptions.get(topic) !== entry) return;
        for (const [id, frame] of entries.items) {
          if (id <= entry.delivered) continue;
          this.gapsFilled.inc();
          this.emit(topic, entry, id, frame);
        }
        if (!entries.more) break;
      }
    } catch (error) {
      this.options.log.warn("redis_gap_fill_failed", { topic, error: String(error) });
    } finally {
      if (this.filling.get(topic) === held) {
        this.filling.delete(topic);
        if (this.subscriptions.get(topic) === entry) {
          held.sort((a, b) => a.seq - b.seq);
          for (const h of held) if (h.seq > entry.delivered) this.emit(topic, entry, h.seq, h.frame);
        }
      }
    }
  }

  /** After a reconnect: every subscribed room and inbox may have missed frames meanwhile. */
  private checkEveryRoom(): void {
    for (const topic of this.subscriptions.topics()) {
      const entry = this.subscriptions.get(topic)!;
      if (sequenceOf(topic) === null || this.filling.has(topic) || entry.establishing) continue;
      void this.fill(topic, entry, []);
    }
  }

  // ---- history -----------------------------------------------------------------------

  private async readAfter(conversation: string, afterId: number, limit: number): Promise<{ items: [number, string][]; more: boolean }> {
    const entries = (await this.commands.send("XRANGE", [keys.log(conversation), `(${afterId}-0`, "+", "COUNT", String(limit + 1)])) as StreamEntry[];
    const more = entries.length > limit;
    const items = entries.slice(0, limit).map((e): [number, string] => [Number.parseInt(e[0], 10), frameOf(e)]);
    return { items, more };
  }

  async after(conversation: string, afterId: number, limit: number): Promise<Page> {
    let read;
    try {
      read = await this.readAfter(conversation, afterId, limit);
    } catch (error) {
      throw this.unavailable(error);
    }
    const messages = read.items.map(([, frame]) => JSON.parse(frame) as HistoryItem);
    if (messages.length > 0) this.seen(messages.at(-1)!.id);
    return { messages, more: read.more };
  }

  async before(conversation: string, beforeId: number | undefined, limit: number): Promise<Page> {
    // Nothing comes before id 1 (and Redis refuses the range "(0-0").
    if (beforeId !== undefined && beforeId <= 1) return { messages: [], more: false };
    const end = beforeId === undefined ? "+" : `(${beforeId}-0`;
    let entries: StreamEntry[];
    try {
      entries = (await this.commands.send("XREVRANGE", [keys.log(conversation), end, "-", "COUNT", String(limit + 1)])) as StreamEntry[];
    } catch (error) {
      throw this.unavailable(error);
    }
    const more = entries.length > limit;
    const messages = entries.slice(0, limit).reverse().map((e) => JSON.parse(frameOf(e)) as HistoryItem);
    if (messages.length > 0) this.seen(messages.at(-1)!.id);
    return { messages, more };
  }

  async delete(room: string, id: number): Promise<boolean> {
    try {
      return (await this.commands.send("XDEL", [keys.log(room), `${id}-0`])) === 1;
    } catch (error) {
      throw this.unavailable(error);
    }
  }

  health(): Record<string, unknown> {
    return { history: "redis", epoch: this.epochId };
  }

  async flush(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    this.subscriber.close();
  }
}

/** The text before a placeholder (`marker` ends with its digit "0") and after it. */
function around(frame: string, marker: string): [string, string] {
  const at = frame.indexOf(marker) + marker.length - 1;
  return [frame.slice(0, at), frame.slice(at + 1)];
}

function aroundLast(frame: string, marker: string): [string, string] {
  const at = frame.lastIndexOf(marker) + marker.length - 1;
  return [frame.slice(0, at), frame.slice(at + 1)];
}

function frameOf(entry: StreamEntry): string {
  const fields = entry[1];
  return fields[fields.indexOf("f") + 1]!;
}
