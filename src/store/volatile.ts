// History off: ids still increase per conversation (clients rely on them for order),
// nothing is kept, and delivery happens at once since there is nothing to wait for.
import type { Committed, HistoryStore, Page, PendingMessage } from "./history.ts";
import { conversationOf, toItem } from "./history.ts";

const EMPTY: Page = { messages: [], more: false };

export class VolatileIds implements HistoryStore {
  readonly keepsHistory = false;
  private readonly lastIds = new Map<string, number>();

  append(message: PendingMessage, done: Committed): void {
    const conversation = conversationOf(message);
    const id = (this.lastIds.get(conversation) ?? 0) + 1;
    this.lastIds.set(conversation, id);
    done(toItem(message, id));
  }
  async after(): Promise<Page> {
    return EMPTY;
  }
  async before(): Promise<Page> {
    return EMPTY;
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}
