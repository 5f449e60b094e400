// The embedded broker: one process, history in SQLite (or none). Publishing is a group
// commit followed by delivery on this node; there is no other node to reach. It keeps the
// same contract as the Redis broker (test/conformance/ holds both to it).
import type { Broker, Deliver, Page, PendingMessage } from "../engine/ports.ts";
import { BrokerUnavailable, InboxFull } from "../engine/ports.ts";
import { conversationOf, sequenceOf, topics } from "../engine/topics.ts";
import type { HistoryItem } from "../protocol/frames.ts";
import { encode } from "../protocol/frames.ts";
import type { MessageStore } from "./store.ts";
import { Subscriptions } from "./subscriptions.ts";

const NOT_STORED = "the message could not be stored";
const INBOX_FULL = "the recipient is away and has as many messages waiting as they may";

export class LocalBroker implements Broker {
  private deliver: Deliver = () => {};
  private readonly subscriptions = new Subscriptions();

  constructor(private readonly store: MessageStore) {}

  get keepsHistory(): boolean {
    return this.store.keepsHistory;
  }

  epoch(): string {
    return this.store.epoch;
  }

  onDeliver(deliver: Deliver): void {
    this.deliver = deliver;
  }

  publish(message: PendingMessage): Promise<HistoryItem> {
    return new Promise((resolve, reject) => {
      this.store.append(message, conversationOf(message), (result) => {
        if (result === "unavailable") return reject(new BrokerUnavailable(NOT_STORED));
        if (result === "inbox_full") return reject(new InboxFull(INBOX_FULL));
        // Encoded once per audience: the room, or each of the two inboxes (its position differs).
        if (message.kind === "room") this.emit(topics.room(message.room), encode(result.item), result.item.id);
        for (const { owner, item } of result.inboxes) this.emit(topics.inbox(owner), encode(item), item.box!);
        resolve(result.item);
      });
    });
  }

  broadcast(topic: string, frame: string): void {
    this.emit(topic, frame, 0);
  }

  private emit(topic: string, frame: string, seq: number): void {
    const entry = this.subscriptions.get(topic);
    if (!entry) return;
    if (seq > 0) this.subscriptions.advance(entry, seq);
    this.deliver(topic, frame, seq);
  }

  async subscribe(topic: string): Promise<void> {
    const { entry, first } = this.subscriptions.acquire(topic);
    const conversation = sequenceOf(topic);
    // Everything up to the newest stored id was published before we listened.
    if (first && conversation !== null) this.subscriptions.advance(entry, this.store.lastId(conversation));
  }

  unsubscribe(topic: string): void {
    if (!this.subscriptions.release(topic)) return;
    const conversation = sequenceOf(topic);
    if (conversation !== null) this.store.forget(conversation);
  }

  delivered(topic: string): number {
    return this.subscriptions.delivered(topic);
  }

  deliveredUpTo(topic: string, seq: number, timeoutMs: number): Promise<boolean> {
    return this.subscriptions.waitFor(topic, seq, timeoutMs);
  }

  after(conversation: string, afterId: number, limit: number): Promise<Page> {
    return this.store.after(conversation, afterId, limit);
  }

  before(conversation: string, beforeId: number | undefined, limit: number): Promise<Page> {
    return this.store.before(conversation, beforeId, limit);
  }

  async delete(room: string, id: number): Promise<boolean> {
    try {
      return await this.store.delete(room, id);
    } catch (error) {
      throw new BrokerUnavailable(`the history could not be changed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  /** Topics subscribed on this node (for tests and /healthz). */
  subscribedTopics(): number {
    return this.subscriptions.size;
  }

  health(): Record<string, unknown> {
    return { history: this.store.keepsHistory ? "on" : "off" };
  }

  async flush(): Promise<void> {
    this.store.flush();
  }

  async close(): Promise<void> {
    this.store.close();
  }
}
