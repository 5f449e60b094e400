// Bans and mutes. A ban refuses a name (compared as names are: case and look-alikes
// folded), a person (their identity, whatever name they use) or an IP address or range at
// admission; a mute refuses a person's messages in one room or everywhere. Each may end
// at a time or never. They are kept in a SanctionStore (SQLite with the history, or
// Redis in a cluster) and, on every node, in this index: admission and every chat send
// check it synchronously, without a round trip.
import { randomId } from "./identity.ts";
import { formatRange, inRange, parseRange, type IpRange } from "./ip-range.ts";

export type SanctionKind = "ban" | "mute";
/** What a sanction applies to. Mutes apply to people only. */
export type TargetType = "name" | "person" | "ip";

export interface Sanction {
  id: string;
  kind: SanctionKind;
  target: TargetType;
  /** The name's key (names.ts nameKey), the person's id, or the canonical IP range. */
  value: string;
  /** For people to read: the name as given, the person's name then, or the range. */
  label: string;
  /** A mute in one room; absent: everywhere. */
  room?: string;
  /** Milliseconds since the epoch when it ends; 0: never. */
  until: number;
  reason: string;
  /** Milliseconds since the epoch. */
  created: number;
  /** Who imposed it (the API's caller, as its log line names them). */
  by: string;
}

/** Where sanctions are kept across restarts. */
export interface SanctionStore {
  add(sanction: Sanction): Promise<void>;
  /** The removed sanction, or null when there was none with that id (or it had ended). */
  remove(id: string): Promise<Sanction | null>;
  /** Every sanction that has not ended at `now` (ended ones are dropped). */
  list(now: number): Promise<Sanction[]>;
}

export const active = (s: Sanction, now: number): boolean => s.until === 0 || s.until > now;

/** A fresh sanction id: short, random, URL-safe. */
export function sanctionId(): string {
  return randomId(9);
}

function push(map: Map<string, Sanction[]>, s: Sanction): void {
  const list = map.get(s.value);
  if (list) list.push(s);
  else map.set(s.value, [s]);
}

/** Every active sanction of this node, indexed for the checks on the hot paths. */
export class SanctionIndex {
  private readonly byId = new Map<string, Sanction>();
  // Lists, not one sanction per key: two bans of one name (a week, then for ever) must each
  // hold until it ends or is lifted — the later one must not hide or unhide the other.
  private readonly names = new Map<string, Sanction[]>();
  private readonly people = new Map<string, Sanction[]>();
  private readonly addresses = new Map<string, Sanction[]>();
  private readonly ranges: { range: IpRange; sanction: Sanction }[] = [];
  private readonly mutes = new Map<string, Sanction[]>();

  constructor(private readonly now: () => number = Date.now) {}

  get size(): number {
    return this.byId.size;
  }

  all(kind?: SanctionKind): Sanction[] {
    const now = this.now();
    return [...this.byId.values()].filter((s) => active(s, now) && (kind === undefined || s.kind === kind)).sort((a, b) => a.created - b.created);
  }

  /** Replace everything with what the store holds. */
  load(list: Sanction[]): void {
    for (const id of [...this.byId.keys()]) this.remove(id);
    for (const s of list) this.add(s);
  }

  add(s: Sanction): void {
    if (!active(s, this.now())) return;
    this.remove(s.id);
    this.byId.set(s.id, s);
    if (s.kind === "mute") {
      push(this.mutes, s);
    } else if (s.target === "name") {
      push(this.names, s);
    } else if (s.target === "person") {
      push(this.people, s);
    } else {
      const range = parseRange(s.value);
      if (!range) return;
      if (range.prefix === range.bytes.length * 8) push(this.addresses, s);
      else this.ranges.push({ range, sanction: s });
    }
  }

  remove(id: string): Sanction | null {
    const s = this.byId.get(id);
    if (!s) return null;
    this.byId.delete(id);
    const drop = (map: Map<string, Sanction[]>) => {
      const list = (map.get(s.value) ?? []).filter((other) => other !== s);
      if (list.length > 0) map.set(s.value, list);
      else map.delete(s.value);
    };
    if (s.kind === "mute") drop(this.mutes);
    else if (s.target === "name") drop(this.names);
    else if (s.target === "person") drop(this.people);
    else {
      drop(this.addresses);
      const at = this.ranges.findIndex((r) => r.sanction === s);
      if (at >= 0) this.ranges.splice(at, 1);
    }
    return s;
  }

  /** Drop what has ended. */
  prune(): void {
    const now = this.now();
    for (const s of [...this.byId.values()]) if (!active(s, now)) this.remove(s.id);
  }

  /** The sanction of the list in force now that ends last (for ever outlasts any time), among those `applies` keeps. */
  private live(list: Sanction[] | undefined, applies: (s: Sanction) => boolean = () => true): Sanction | null {
    if (!list) return null;
    const now = this.now();
    let found: Sanction | null = null;
    for (const s of list) {
      if (!active(s, now) || !applies(s)) continue;
      if (!found || s.until === 0 || (found.until !== 0 && s.until > found.until)) found = s;
    }
    return found;
  }

  nameBan(key: string): Sanction | null {
    return this.names.size === 0 ? null : this.live(this.names.get(key));
  }

  personBan(id: string): Sanction | null {
    return this.people.size === 0 ? null : this.live(this.people.get(id));
  }

  ipBan(ip: string): Sanction | null {
    if (this.addresses.size === 0 && this.ranges.length === 0) return null;
    const address = parseRange(ip);
    if (!address) return null;
    const exact = this.live(this.addresses.get(formatRange(address)));
    if (exact) return exact;
    for (const { range, sanction } of this.ranges) if (inRange(address.bytes, range) && active(sanction, this.now())) return sanction;
    return null;
  }

  /** The mute that stops this person speaking in this room, if any (the one that ends last). */
  mute(personId: string, room: string): Sanction | null {
    if (this.mutes.size === 0) return null;
    return this.live(this.mutes.get(personId), (s) => s.room === undefined || s.room === room);
  }
}
