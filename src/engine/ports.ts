// The seams of the chat engine. Everything that crosses a process or machine boundary sits
// behind one of these interfaces, with an embedded default and a Redis implementation:
//   Broker     ids, storage and fan-out between nodes, as one step per message; epochs
//   Directory  names and room membership across nodes (presence counts and lists)
// and the two things Bun gives us, narrowed so tests can hand in fakes:
//   ChatSocket one client's socket;  Fanout  server.publish to a topic's subscribers.
import type { HistoryItem, Ref } from "../protocol/frames.ts";

/** A message accepted from a client, before the broker has given it an id. */
export type PendingMessage = RoomMessage | PrivateMessage;

export interface RoomMessage {
  kind: "room";
  room: string;
  from: string;
  text: string;
  ts: number;
  ref?: Ref;
  /** Published by the backend through the server API (`from` is a bot's name, not a person's). */
  bot?: true;
}

/**
 * Between two people (identities, not names): stored in their conversation and appended
 * to both inboxes, so every connection of either sees it, now or when it comes back.
 */
export interface PrivateMessage {
  kind: "private";
  from: string;
  to: string;
  fromId: string;
  toId: string;
  text: string;
  ts: number;
  ref?: Ref;
  /** The recipient had no connection when it was sent. */
  state: "delivered" | "queued";
  /** Sent by the backend through the server API: `fromId` is no person's, and has no inbox. */
  bot?: true;
  /**
   * For a queued message: refuse it (InboxFull) when the recipient already has `cap`
   * messages after `delivered` (the last inbox position any of their connections got).
   */
  queue?: { delivered: number; cap: number };
}

export interface Page {
  messages: HistoryItem[];
  /** True when the page stopped at its limit: more messages follow its last one. */
  more: boolean;
}

/**
 * Receives every frame for a topic this node subscribed to, on this node. `seq` is the
 * message id for room messages (their topic is their conversation), else 0.
 */
export type Deliver = (topic: string, frame: string, seq: number) => void;

/** The broker could not store or reach its backend: nothing was delivered, retry later. */
export class BrokerUnavailable extends Error {}

/**
 * The backend's connection dropped after the message was sent to it: it may have been
 * stored and delivered, or not. Not a "send it again" (that could duplicate it).
 */
export class BrokerUncertain extends BrokerUnavailable {}

/** The recipient is away and already has as many messages waiting as they may. */
export class InboxFull extends Error {}

export interface Broker {
  /** False when history is off: ids are still assigned, nothing is kept. */
  readonly keepsHistory: boolean;
  /**
   * The history's epoch. It changes only when the broker lost its history (a Redis
   * restart without persistence, a new database file); ids keep growing across it.
   */
  epoch(): string;
  /** Where delivered frames go; set once, before any subscribe. */
  onDeliver(deliver: Deliver): void;
  /**
   * Store (when history is on), assign the id, and fan the frame out to every node's
   * subscribers of the message's topics — one step. Resolves with the stored item once it
   * is durable; rejects with BrokerUnavailable when it could not be stored, in which case
   * nobody received it (InboxFull: the away recipient's inbox is full). The sender sees
   * its own copy through its subscription (a room) or its inbox (private).
   */
  publish(message: PendingMessage): Promise<HistoryItem>;
  /** A frame that is not stored or numbered (presence, typing, nick), to every node. */
  broadcast(topic: string, frame: string): void;
  /**
   * This node wants `topic`. Reference counted: every subscribe needs one unsubscribe.
   * Resolves once every message published from now on will be delivered here, and
   * `delivered(topic)` is at least the topic's newest id at that point. Rejects with
   * BrokerUnavailable when the backend cannot be reached (the reference is still held:
   * release it with unsubscribe).
   */
  subscribe(topic: string): Promise<void>;
  /** Drop one reference; the last one stops delivery. Never throws, whatever the state. */
  unsubscribe(topic: string): void;
  /** Highest id delivered on this node for a subscribed room or inbox topic, else 0. */
  delivered(topic: string): number;
  /** Resolves true once `delivered(topic) >= seq`, false after `timeoutMs` or unsubscribe. */
  deliveredUpTo(topic: string, seq: number, timeoutMs: number): Promise<boolean>;
  /** Messages with id > afterId, oldest first, at most `limit`. */
  after(conversation: string, afterId: number, limit: number): Promise<Page>;
  /** Messages with id < beforeId (or the newest), returned oldest first, at most `limit`. */
  before(conversation: string, beforeId: number | undefined, limit: number): Promise<Page>;
  /**
   * Remove one room message from the history (a moderator's delete): true when it was
   * stored, false when there was no such message (or history is off). Ids are not reused.
   * Fanning out the `deleted` frame is the caller's (broadcast). Rejects with BrokerUnavailable.
   */
  delete(room: string, id: number): Promise<boolean>;
  /** Facts for /healthz. */
  health(): Record<string, unknown>;
  /** Commit and deliver whatever is queued now (graceful stop). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** The directory could not be reached: answer store_unavailable / 503, not a verdict. */
export class DirectoryUnavailable extends Error {}

/** A person: one identity across connections, devices and reconnects. */
export interface Identity {
  /** Stable: private conversations and the inbox belong to it, not to the name. */
  id: string;
  name: string;
  /** The name's comparison key (names.ts nameKey). */
  key: string;
}

export interface ClaimRequest {
  name: string;
  key: string;
  /** The resume key a connection presented (people without a token). */
  resume?: string;
  /** A verified token's subject: the identity, on any number of devices. */
  subject?: string;
  /** Connections one person may have at once (MAX_CONNECTIONS_PER_USER). */
  maxConnections?: number;
}

export type Claim =
  | {
      ok: true;
      identity: Identity;
      /** A person created by this claim: their resume key, told to this connection only. */
      resume?: string;
      /** The last inbox position any connection of the person was sent (for away messages). */
      delivered: number;
      /** The person's newest inbox position, when the claim learned it on the way: a
       * connection that has seen it already need not read the inbox. */
      inboxHead?: number;
    }
  | { ok: false; reason: "taken" | "too_many_connections" };

/** Who a private message to a name goes to: the person holding it, or who held it last. */
export interface Recipient {
  id: string;
  name: string;
  /** Has a connection somewhere right now. */
  online: boolean;
  /** Their inbox position last delivered (for the away-queue cap). */
  delivered: number;
}

/** A room with people in it, and how many. */
export interface RoomCount {
  room: string;
  online: number;
}

export interface Member {
  id: string;
  name: string;
}

/**
 * What the directory decided, told by the one node whose change it was: so each event
 * happens once per cluster, however many nodes there are (the webhooks' events).
 */
export type DirectoryEvent =
  | { type: "user.connected" | "user.disconnected"; person: string; name: string }
  | { type: "member.joined" | "member.left"; room: string; person: string; name: string }
  | { type: "room.occupied" | "room.vacated"; room: string };

export interface Directory {
  /**
   * A connection of this node wants to be `name`: as the person who holds it (resume key
   * or token subject), as a new person (the name is free: nobody holds it, and its last
   * holder's grace period is over), or not at all ({ok: false}). A successful claim counts
   * one connection of the person on this node; `detach` gives it back. Rejects with
   * DirectoryUnavailable when that cannot be decided right now. With `probe`, only answers
   * whether it would succeed (the admission preflight): nothing is counted or created.
   */
  claim(request: ClaimRequest, probe?: boolean): Promise<Claim>;
  /** One connection of the person on this node is gone; `delivered` is their inbox mark. */
  detach(id: string, delivered: number): void;
  /** The person takes a new name (nick): false if it is held by someone else. */
  rename(id: string, key: string, name: string): Promise<boolean>;
  /**
   * Another node renamed a person who has connections here (its rename is done): what
   * this node keeps of the person follows, so it never brings the old name back.
   */
  renamedElsewhere?(id: string, key: string, name: string): void;
  /** The person a private message to this name key reaches, or null for a name never held. */
  lookup(key: string): Promise<Recipient | null>;
  /** A person of this node entered / left a room; resolves true when it is their first /
   * last connection in the room anywhere (presence is announced then). */
  joined(room: string, id: string, name: string): Promise<boolean>;
  left(room: string, id: string): Promise<boolean>;
  /** People in a room on every node. */
  online(room: string): Promise<number>;
  /** Display names of people in a room, at most `cap`. */
  members(room: string, cap: number): Promise<string[]>;
  /**
   * Both at once, for a joiner's welcome: one round trip in cluster mode, and it may be a
   * few milliseconds old (one read serves a storm of joins; presence corrects it). `who`
   * asks online() and members() for the current answer.
   */
  view(room: string, cap: number): Promise<{ online: number; members: string[] }>;
  /** Nodes in the cluster (each publishes its own presence); one when absent. */
  nodes?(): number;
  /** Rooms with people in them, in name order after `after` ("" from the start), at most `limit`. */
  rooms(after: string, limit: number): Promise<{ rooms: RoomCount[]; more: boolean }>;
  /**
   * One page of a room's people: `cursor` "0" at first, then the `next` of the page before;
   * `next` is null on the last page. People who come or go meanwhile may be missed or repeated.
   */
  memberPage(room: string, cursor: string, limit: number): Promise<{ members: Member[]; next: string | null }>;
  /** The ids of the other live nodes of the cluster (none when this node is alone). */
  otherNodes(): Promise<string[]>;
  /** Where events go (the webhooks); one listener, set once. */
  watch(listener: (event: DirectoryEvent) => void): void;
  health(): Record<string, unknown>;
  close(): Promise<void>;
}

/** What the engine needs of one client's socket (Bun's ServerWebSocket, or a test fake). */
export interface ChatSocket {
  /** `compress`: deflate it for a client that offered permessage-deflate (PER_MESSAGE_DEFLATE). */
  send(frame: string, compress?: boolean): number;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(): number;
}

/** Native fan-out to every socket subscribed to a topic (Bun's server.publish). */
export interface Fanout {
  publish(topic: string, frame: string, compress?: boolean): void;
  subscriberCount(topic: string): number;
}
