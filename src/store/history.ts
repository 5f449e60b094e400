// The HistoryStore interface: where message ids come from and where history lives.
// SQLite (embedded default) and Redis (cluster) implement it; nothing else knows which.
import type { HistoryItem, Ref } from "../chat/protocol.ts";

/** A message accepted from a client, before the store has given it an id. */
export type PendingMessage =
  | { kind: "room"; room: string; from: string; text: string; ts: number; ref?: Ref }
  | { kind: "private"; from: string; to: string; fromKey: string; toKey: string; text: string; ts: number; ref?: Ref };

/** Called once the message is durable (with its id) or could not be stored (null). */
export type Committed = (item: HistoryItem | null) => void;

export interface Page {
  messages: HistoryItem[];
  more: boolean;
}

export interface HistoryStore {
  /** False when history is off: ids are still assigned, nothing is kept. */
  readonly keepsHistory: boolean;
  /** True when a commit also publishes the frame (Redis: store and publish are one atomic step). */
  readonly publishesOnCommit?: boolean;
  /** Queue a message for the next group commit. `done` runs after the commit. */
  append(message: PendingMessage, done: Committed): void;
  /** Messages with id > afterId, oldest first, at most `limit`. */
  after(conversation: string, afterId: number, limit: number): Promise<Page>;
  /** Messages with id < beforeId (or the newest), returned oldest first, at most `limit`. */
  before(conversation: string, beforeId: number | undefined, limit: number): Promise<Page>;
  /** Commit whatever is queued now. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** Conversation key of a private chat: the two name keys, sorted, so both sides share it. */
export function privateConversation(keyA: string, keyB: string): string {
  // \u001f cannot appear in a name (control characters are refused), so the key is unambiguous.
  return keyA < keyB ? `@${keyA}\u001f${keyB}` : `@${keyB}\u001f${keyA}`;
}

export function conversationOf(message: PendingMessage): string {
  return message.kind === "room" ? message.room : privateConversation(message.fromKey, message.toKey);
}

export function toItem(message: PendingMessage, id: number): HistoryItem {
  // `ref` last, and dropped from the JSON when undefined.
  return message.kind === "room"
    ? { type: "message", id, room: message.room, from: message.from, text: message.text, ts: message.ts, ref: message.ref }
    : { type: "private", id, from: message.from, to: message.to, text: message.text, ts: message.ts, ref: message.ref };
}
