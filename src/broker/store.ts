// Where the in-process broker keeps messages: a SQLite file (or :memory:), or nothing at
// all (history off, ids only). Ids are assigned here, per conversation, and never repeat.
import type { HistoryItem } from "../protocol/frames.ts";
import type { Page, PendingMessage } from "../engine/ports.ts";

/** Called once the message is durable (with its id) or could not be stored (null). */
export type Committed = (item: HistoryItem | null) => void;

export interface MessageStore {
  readonly keepsHistory: boolean;
  /** Changes only when the stored history was lost (a new database file). */
  readonly epoch: string;
  /** Queue a message for the next group commit; `done` runs after the commit. */
  append(message: PendingMessage, conversation: string, done: Committed): void;
  /** Newest id of a conversation (0 when it has none). */
  lastId(conversation: string): number;
  after(conversation: string, afterId: number, limit: number): Promise<Page>;
  before(conversation: string, beforeId: number | undefined, limit: number): Promise<Page>;
  /** Nobody on this node follows the conversation now: drop what is cached for it. */
  forget(conversation: string): void;
  /** Commit whatever is queued now. */
  flush(): void;
  close(): void;
}

/** Cached per-conversation numbers are dropped past this many, so memory stays bounded. */
export const CACHE_LIMIT = 10_000;

/** A fresh epoch: short, URL-safe, random. */
export function newEpoch(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(9))).toString("base64url");
}
