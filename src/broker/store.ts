// Where the in-process broker keeps messages: a SQLite file (or :memory:), or nothing at
// all (history off, ids only). Ids are assigned here, per conversation, and never repeat.
import type { HistoryItem, PrivateFrame } from "../protocol/frames.ts";
import type { Page, PendingMessage, PrivateMessage } from "../engine/ports.ts";
import { inboxConversation, inboxesOf, toInboxItem, toItem } from "../engine/topics.ts";
import { randomId } from "../engine/identity.ts";

/** A message once stored: its conversation's copy, and each inbox's (private messages). */
export interface Stored {
  item: HistoryItem;
  inboxes: { owner: string; item: PrivateFrame }[];
}

/** Why a message was not stored: the backend failed, or the away recipient's inbox is full. */
export type NotStored = "unavailable" | "inbox_full";

/** Called once the message is durable (with its ids) or was not stored. */
export type Committed = (result: Stored | NotStored) => void;

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
  /** Remove one room message; false when it is not stored. */
  delete(conversation: string, id: number): Promise<boolean>;
  /** Nobody on this node follows the conversation now: drop what is cached for it. */
  forget(conversation: string): void;
  /** Commit whatever is queued now. */
  flush(): void;
  close(): void;
}

/** Cached per-conversation numbers are dropped past this many, so memory stays bounded. */
export const CACHE_LIMIT = 10_000;

/** A queued private message finds the away recipient's inbox already holding `cap` unsent. */
export function inboxFull(message: PendingMessage, head: (conversation: string) => number): boolean {
  const queue = message.kind === "private" ? message.queue : undefined;
  return queue !== undefined && head(inboxConversation((message as PrivateMessage).toId)) - queue.delivered >= queue.cap;
}

/** The message with its id, numbered into each inbox it belongs to (`next`: an inbox's next position). */
export function stored(message: PendingMessage, id: number, next: (conversation: string) => number): Stored {
  if (message.kind === "room") return { item: toItem(message, id), inboxes: [] };
  const inboxes = inboxesOf(message).map((owner) => ({ owner, item: toInboxItem(message, id, next(inboxConversation(owner))) }));
  return { item: toItem(message, id), inboxes };
}

/** A fresh epoch: short, URL-safe, random. */
export function newEpoch(): string {
  return randomId(9);
}
