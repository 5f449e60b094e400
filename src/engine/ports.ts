// The seams of the chat engine. Everything that crosses a process or machine boundary sits
// behind one of these interfaces, with an embedded default and a Redis implementation:
//   Broker     ids, storage and fan-out between nodes, as one step per message; epochs
//   Directory  names and room membership across nodes (presence counts and lists)
// and the two things Bun gives us, narrowed so tests can hand in fakes:
//   ChatSocket one client's socket;  Fanout  server.publish to a topic's subscribers.
import type { HistoryItem, Ref } from "../protocol/frames.ts";

/** A message accepted from a client, before the broker has given it an id. */
export type PendingMessage =
  | { kind: "room"; room: string; from: string; text: string; ts: number; ref?: Ref }
  | { kind: "private"; from: string; to: string; fromKey: string; toKey: string; text: string; ts: number; ref?: Ref };

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
   * nobody received it. The sender sees its own copy through its subscription.
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
  /** Highest message id delivered on this node for a subscribed room topic, else 0. */
  delivered(topic: string): number;
  /** Resolves true once `delivered(topic) >= seq`, false after `timeoutMs` or unsubscribe. */
  deliveredUpTo(topic: string, seq: number, timeoutMs: number): Promise<boolean>;
  /** Messages with id > afterId, oldest first, at most `limit`. */
  after(conversation: string, afterId: number, limit: number): Promise<Page>;
  /** Messages with id < beforeId (or the newest), returned oldest first, at most `limit`. */
  before(conversation: string, beforeId: number | undefined, limit: number): Promise<Page>;
  /** Facts for /healthz. */
  health(): Record<string, unknown>;
  /** Commit and deliver whatever is queued now (graceful stop). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** The directory could not be reached: answer store_unavailable / 503, not a verdict. */
export class DirectoryUnavailable extends Error {}

export interface Directory {
  /**
   * Take a name for a person of this node: false when someone else holds it anywhere.
   * Rejects with DirectoryUnavailable when that cannot be known right now.
   */
  claim(key: string, name: string): Promise<boolean>;
  /** Give a name back (its person left or renamed). */
  release(key: string): void;
  /** The display name of a person online anywhere, or null. Rejects when unknowable. */
  lookup(key: string): Promise<string | null>;
  /** A person of this node entered / left a room (for cluster-wide counts and lists). */
  joined(room: string, key: string, name: string): void;
  left(room: string, key: string): void;
  /** People in a room on every node. */
  online(room: string): Promise<number>;
  /** Display names of people in a room, at most `cap`. */
  members(room: string, cap: number): Promise<string[]>;
  health(): Record<string, unknown>;
  close(): Promise<void>;
}

/** What the engine needs of one client's socket (Bun's ServerWebSocket, or a test fake). */
export interface ChatSocket {
  send(frame: string): number;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
  close(code?: number, reason?: string): void;
  terminate(): void;
  ping(): number;
}

/** Native fan-out to every socket subscribed to a topic (Bun's server.publish). */
export interface Fanout {
  publish(topic: string, frame: string): void;
  subscriberCount(topic: string): number;
}
