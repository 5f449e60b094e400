// One room as the client knows it: the live member set, the online count, and the recovery
// cursor (last id seen + the epoch it belongs to). Room ids increase within an epoch, so a
// message at or below the cursor was seen already: that one comparison de-duplicates a
// replay that overlaps live delivery, and keeps every room's messages in id order.
import type { MessageFrame } from "../protocol/frames.ts";

export interface RoomView {
  readonly name: string;
  /** People in the room (up to the server's MAX_MEMBERS_LISTED; `online` is always exact). */
  readonly members: ReadonlySet<string>;
  readonly online: number;
  /** The newest message id delivered (recovery resumes after it), if any. */
  readonly lastId: number | undefined;
  /** The history epoch `lastId` belongs to. */
  readonly epoch: string | undefined;
}

export class RoomState implements RoomView {
  members = new Set<string>();
  online = 0;
  lastId: number | undefined;
  epoch: string | undefined;
  /** When the last `who` was asked for a truncated presence (at most one per 10 s). */
  lastWho = 0;

  constructor(readonly name: string, cursor?: { lastId?: number; epoch?: string }) {
    this.lastId = cursor?.lastId;
    this.epoch = cursor?.epoch;
  }

  /**
   * Adopt the epoch of a replay; true when it differs from the one the cursor came from
   * (the server lost its history: ids may start over, so the cursor is dropped).
   */
  adoptEpoch(epoch: string): boolean {
    const changed = this.epoch !== undefined && this.epoch !== epoch;
    if (changed) this.lastId = undefined;
    this.epoch = epoch;
    return changed;
  }

  /** True for a message not seen before (and it moves the cursor). */
  accept(message: MessageFrame): boolean {
    if (this.lastId !== undefined && message.id <= this.lastId) return false;
    this.lastId = message.id;
    return true;
  }

  setMembers(members: readonly string[], online: number): void {
    this.members = new Set(members);
    this.online = online;
  }

  presence(joined: readonly string[], left: readonly string[], online: number): void {
    for (const name of left) this.members.delete(name);
    for (const name of joined) this.members.add(name);
    this.online = online;
  }

  rename(from: string, to: string): void {
    if (!this.members.delete(from)) return;
    this.members.add(to);
  }
}
