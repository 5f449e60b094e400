// Addresses. A conversation is where history lives and ids count (a room, the private
// conversation of two people, or one person's inbox); a topic is where frames fan out (a
// room, or one person's inbox). A room and an inbox are both, so their ids are their
// topic's sequence: every room and every inbox can be replayed and gap-checked alike.
import type { HistoryItem, PrivateFrame } from "../protocol/frames.ts";
import type { PendingMessage, PrivateMessage } from "./ports.ts";

/** Whether `topic` begins with the one-letter kind `letter` and a colon. */
const isKind = (topic: string, letter: number) => topic.charCodeAt(0) === letter && topic.charCodeAt(1) === 58; /* : */
const ROOM = 114; /* r */
const CONTROL = 99; /* c */

/**
 * The broker's topics: rooms ("r:…"), cluster control ("c:…"), and inboxes — every other
 * topic. A new kind of topic must get its letter here (and in `inboxOf`), or it would be
 * taken for an inbox.
 */
export const topics = {
  room: (room: string) => `r:${room}`,
  /**
   * A person's inbox topic is their id itself: the string the person holds already, where a
   * prefixed copy would cost one more string per connected person. Ids never begin as the
   * other topics do ("a…" anonymous, "t:…" token people: engine/identity.ts).
   */
  inbox: (personId: string) => personId,
  /** The room a room topic names, or null for any other topic. */
  roomOf: (topic: string) => (isKind(topic, ROOM) ? topic.slice(2) : null),
  /** The person an inbox topic names, or null for any other topic. */
  inboxOf: (topic: string) => (topic === "" || isKind(topic, ROOM) || isKind(topic, CONTROL) ? null : topic),
  /** Cluster control (engine/control.ts): every node's requests, and one node's answers. */
  control: "c:all",
  answers: (node: string) => `c:n:${node}`,
  isControl: (topic: string) => isKind(topic, CONTROL),
} as const;

/** The conversation whose ids number a topic's frames: a room, or a person's inbox. */
export function sequenceOf(topic: string): string | null {
  const room = topics.roomOf(topic);
  if (room !== null) return room;
  const person = topics.inboxOf(topic);
  return person !== null ? inboxConversation(person) : null;
}

/** Conversation key of a private chat: the two identity ids, sorted, so both sides share it. */
export function privateConversation(idA: string, idB: string): string {
  // \u001f cannot appear in an identity id (names and token subjects refuse control
  // characters; anonymous ids are base64url), so the key is unambiguous.
  return idA < idB ? `@${idA}\u001f${idB}` : `@${idB}\u001f${idA}`;
}

/** A person's inbox as a conversation: every private message they sent or received. */
export function inboxConversation(personId: string): string {
  return `~${personId}`;
}

/** The person an inbox conversation belongs to, or null for any other conversation. */
export function inboxOwner(conversation: string): string | null {
  return conversation.charCodeAt(0) === 126 /* ~ */ ? conversation.slice(1) : null;
}

export function conversationOf(message: PendingMessage): string {
  return message.kind === "room" ? message.room : privateConversation(message.fromId, message.toId);
}

/** The inboxes a private message is appended to: the recipient's, and the sender's (a bot has none). */
export function inboxesOf(message: PrivateMessage): string[] {
  return message.toId === message.fromId || message.bot ? [message.toId] : [message.toId, message.fromId];
}

const BOT = { bot: true } as const;

export function toItem(message: PendingMessage, id: number): HistoryItem {
  // `ref` last, and dropped from the JSON when undefined; `bot` only on the backend's messages.
  return message.kind === "room"
    ? { type: "message", id, room: message.room, from: message.from, text: message.text, ts: message.ts, ...(message.bot ? BOT : {}), ref: message.ref }
    : { type: "private", id, from: message.from, to: message.to, text: message.text, ts: message.ts, ...(message.bot ? BOT : {}), ref: message.ref };
}

/** A private message as one inbox holds it: its position there, and whether it waited. */
export function toInboxItem(message: PrivateMessage, id: number, box: number): PrivateFrame {
  return { type: "private", id, from: message.from, to: message.to, text: message.text, ts: message.ts, ...(message.bot ? BOT : {}), ref: message.ref, state: message.state, box };
}
