// History off: ids still increase per conversation (clients rely on them for order),
// nothing is kept, and delivery happens at once since there is nothing to wait for.
// Counters of conversations nobody follows are dropped; a floor above every dropped
// counter makes a conversation that comes back continue above anything it handed out.
import type { Page, PendingMessage } from "../engine/ports.ts";
import { CACHE_LIMIT, newEpoch, stored, type Committed, type MessageStore } from "./store.ts";

const EMPTY: Page = { messages: [], more: false };

export class VolatileStore implements MessageStore {
  readonly keepsHistory = false;
  /** Nothing survives the process, so every start is a new epoch. */
  readonly epoch = newEpoch();
  private readonly lastIds = new Map<string, number>();
  private floor = 0;

  append(message: PendingMessage, conversation: string, done: Committed): void {
    // Nothing is kept, so nothing can wait for an away recipient: the engine never queues here.
    done(stored(message, this.next(conversation), (inbox) => this.next(inbox)));
  }

  private next(conversation: string): number {
    const id = this.lastId(conversation) + 1;
    if (this.lastIds.size >= CACHE_LIMIT && !this.lastIds.has(conversation)) this.dropAll();
    this.lastIds.set(conversation, id);
    return id;
  }

  lastId(conversation: string): number {
    return this.lastIds.get(conversation) ?? this.floor;
  }

  forget(conversation: string): void {
    const last = this.lastIds.get(conversation);
    if (last === undefined) return;
    this.lastIds.delete(conversation);
    if (last > this.floor) this.floor = last;
  }

  private dropAll(): void {
    for (const last of this.lastIds.values()) if (last > this.floor) this.floor = last;
    this.lastIds.clear();
  }

  async after(): Promise<Page> {
    return EMPTY;
  }
  async before(): Promise<Page> {
    return EMPTY;
  }
  async delete(): Promise<boolean> {
    return false;
  }
  flush(): void {}
  close(): void {}
}
