// What a person's message passes before it is stored: their mutes, then the publish hook
// (the backend's allow / reject / replace), then the broker. Without mutes or a hook it is
// one synchronous call to broker.publish, as before. With a hook, checks run concurrently
// but messages of one connection are stored in the order they were sent: each waits for
// the one before it. Whatever was stored is told to `onStored` (the webhooks) once.
import type { ErrorCode, HistoryItem } from "../protocol/frames.ts";
import type { Broker, PendingMessage } from "./ports.ts";
import type { Sanction, SanctionIndex } from "./sanctions.ts";
import type { Session } from "./session.ts";

/** The message was refused on purpose: the sender is told `code` (and `until` for a mute). */
export class Refused extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly until?: number) {
    super(message);
  }
}

export type Verdict =
  | { result: "allow" }
  | { result: "reject"; reason: string }
  | { result: "replace"; text: string }
  /** The check failed and the failure policy is to refuse (fail closed). */
  | { result: "unavailable" };

/** The publish hook: answers for every message, applying its failure policy itself. */
export interface PublishCheck {
  check(message: PendingMessage, personId: string): Promise<Verdict>;
}

/** Checks of one connection waiting for the hook; more are refused. */
export const MAX_WAITING_CHECKS = 100;

interface Queue {
  tail: Promise<unknown>;
  waiting: number;
}

export function mutedMessage(mute: Sanction): string {
  const until = mute.until === 0 ? "" : ` until ${new Date(mute.until).toISOString()}`;
  const where = mute.room === undefined ? "" : ` in ${mute.room}`;
  return `you are muted${where}${until}${mute.reason ? `: ${mute.reason}` : ""}`;
}

export class Gate {
  /** Bans and mutes of this node (moderation), when the server has them. */
  sanctions: SanctionIndex | null = null;
  hook: PublishCheck | null = null;
  /** Told of every message stored, with the person who sent it (none: the backend). */
  onStored: ((item: HistoryItem, message: PendingMessage, person: string | undefined) => void) | null = null;
  private readonly queues = new WeakMap<Session, Queue>();

  constructor(private readonly broker: Broker) {}

  /** A person's message: checked, then stored and fanned out. Rejects with Refused or the broker's errors. */
  submit(s: Session, message: PendingMessage): Promise<HistoryItem> {
    const refused = this.muted(s, message);
    if (refused) return Promise.reject(refused);
    return this.told(this.hook ? this.checked(s, message, this.hook) : this.broker.publish(message), message, s.person?.id);
  }

  /** A message of the backend (server API): no checks. */
  store(message: PendingMessage): Promise<HistoryItem> {
    return this.told(this.broker.publish(message), message, undefined);
  }

  private told(stored: Promise<HistoryItem>, message: PendingMessage, person: string | undefined): Promise<HistoryItem> {
    if (this.onStored) stored.then((item) => this.onStored?.(item, message, person), () => {});
    return stored;
  }

  private muted(s: Session, message: PendingMessage): Refused | null {
    const person = s.person;
    if (!this.sanctions || !person) return null;
    // A mute everywhere silences private messages too; a room's mute only that room.
    const mute = this.sanctions.mute(person.id, message.kind === "room" ? message.room : "");
    return mute ? new Refused("muted", mutedMessage(mute), mute.until === 0 ? undefined : mute.until) : null;
  }

  private checked(s: Session, message: PendingMessage, hook: PublishCheck): Promise<HistoryItem> {
    let queue = this.queues.get(s);
    if (!queue) this.queues.set(s, (queue = { tail: Promise.resolve(), waiting: 0 }));
    if (queue.waiting >= MAX_WAITING_CHECKS) return Promise.reject(new Refused("rate_limited", "too many messages are waiting for their check; slow down"));
    const q = queue;
    q.waiting++;
    const verdict = hook.check(message, s.person?.id ?? "");
    const run = q.tail.then(() => verdict).then((v) => {
      q.waiting--;
      // Re-checked after the wait: the connection may have closed, left the room, or been muted.
      if (s.closed) throw new Refused("not_in_room", "the connection closed before the message was checked");
      if (message.kind === "room" && !s.rooms.has(message.room)) throw new Refused("not_in_room", `you are not in room "${message.room}"`);
      const muted = this.muted(s, message);
      if (muted) throw muted;
      switch (v.result) {
        case "allow":
          return this.broker.publish(message);
        case "replace":
          return this.broker.publish({ ...message, text: v.text });
        case "reject":
          throw new Refused("rejected", v.reason || "the message was rejected");
        case "unavailable":
          throw new Refused("check_unavailable", "the message could not be checked right now and was not sent; send it again");
      }
    });
    q.tail = run.catch(() => {});
    return run;
  }
}
