// Addresses. A conversation is where history lives and ids count (a room, or the private
// conversation of two people); a topic is where frames fan out (a room, or one person's
// inbox). A room is both, under the same name, so a room's ids are its topic's sequence.
import type { HistoryItem } from "../protocol/frames.ts";
import type { PendingMessage } from "./ports.ts";

export const topics = {
  room: (room: string) => `r:${room}`,
  inbox: (personKey: string) => `u:${personKey}`,
  /** The room a room topic names, or null for any other topic. */
  roomOf: (topic: string) => (topic.charCodeAt(0) === 114 /* r */ && topic.charCodeAt(1) === 58 /* : */ ? topic.slice(2) : null),
  /** The person an inbox topic names, or null for any other topic. */
  inboxOf: (topic: string) => (topic.charCodeAt(0) === 117 /* u */ && topic.charCodeAt(1) === 58 /* : */ ? topic.slice(2) : null),
} as const;

/** Conversation key of a private chat: the two name keys, sorted, so both sides share it. */
export function privateConversation(keyA: string, keyB: string): string {
  // \u001f cannot appear in a name (control characters are refused), so the key is unambiguous.
  return keyA < keyB ? `@${keyA}\u001f${keyB}` : `@${keyB}\u001f${keyA}`;
}

export function conversationOf(message: PendingMessage): string {
  return message.kind === "room" ? message.room : privateConversation(message.fromKey, message.toKey);
}

/** The topics a message fans out to: its room, or both people's inboxes. */
export function topicsOf(message: PendingMessage): string[] {
  if (message.kind === "room") return [topics.room(message.room)];
  return message.toKey === message.fromKey ? [topics.inbox(message.toKey)] : [topics.inbox(message.toKey), topics.inbox(message.fromKey)];
}

export function toItem(message: PendingMessage, id: number): HistoryItem {
  // `ref` last, and dropped from the JSON when undefined.
  return message.kind === "room"
    ? { type: "message", id, room: message.room, from: message.from, text: message.text, ts: message.ts, ref: message.ref }
    : { type: "private", id, from: message.from, to: message.to, text: message.text, ts: message.ts, ref: message.ref };
}
