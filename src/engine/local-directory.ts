// The Directory of a single node. The registry knows who is here; the identity store
// (SQLite or memory) remembers people across their reconnects: which person holds each
// name, resume keys, and inbox marks. Every claim is decided synchronously, so two
// handshakes for one name cannot both win. Rooms hold people as the Redis directory's do
// (person id → display name), so both answer the same questions the same way.
import type { IdentityRecord, IdentityStore } from "../broker/identities.ts";
import { held, newPersonId, newResumeKey, resumeHash, subjectId } from "./identity.ts";
import type { Claim, ClaimRequest, Directory, DirectoryEvent, Member, Recipient, RoomCount } from "./ports.ts";
import { CompactMap } from "./compact-map.ts";
import type { Registry } from "./registry.ts";

export class LocalDirectory implements Directory {
  /** Connections of each person on this node, admitted or open. */
  private readonly connections = new CompactMap<number>();
  /** People in each room (id → display name); a room leaves the map with its last person. */
  private readonly roomPeople = new Map<string, Map<string, string>>();
  private listener: (event: DirectoryEvent) => void = () => {};

  private readonly expiry: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly registry: Registry,
    private readonly store: IdentityStore,
    private readonly graceMs: number,
    private readonly now: () => number = Date.now,
    /** Seconds a person without connections is remembered (0: forever). */
    retentionSeconds = 0,
  ) {
    if (retentionSeconds > 0) {
      const expire = () => this.store.expire(this.now() - retentionSeconds * 1000, (id) => this.connections.has(id));
      expire();
      this.expiry = setInterval(expire, Math.min(3_600_000, retentionSeconds * 100));
      this.expiry.unref?.();
    }
  }

  private isHeld(record: IdentityRecord): boolean {
    return held(this.connections.get(record.id) ?? 0, record.seen, this.now(), this.graceMs);
  }

  async claim(request: ClaimRequest, probe = false): Promise<Claim> {
    const holderId = this.store.holder(request.key);
    const holder = holderId === undefined ? undefined : this.store.get(holderId);
    if (request.subject !== undefined) {
      const id = subjectId(request.subject);
      if (holder && holder.id !== id && this.isHeld(holder)) return { ok: false, reason: "taken" };
      const person = this.store.get(id) ?? { id, name: request.name, key: request.key, resume: null, seen: this.now(), delivered: 0 };
      return this.attach(person, request, probe);
    }
    const hash = request.resume === undefined ? undefined : resumeHash(request.resume);
    // A resume key whose person is connected right now joins as them, under their current
    // name, whatever name it asked for: a tab that was away while another tab renamed the
    // person still asks for the old name, and must not become someone new (handed another
    // person's key, losing its conversations) nor be refused the old name someone took.
    const connected = hash === undefined ? undefined : this.store.byResume(hash);
    if (connected && (this.connections.get(connected.id) ?? 0) > 0) {
      return this.attach(connected, { ...request, name: connected.name, key: connected.key }, probe);
    }
    if (holder) {
      if (hash !== undefined && holder.resume === hash) return this.attach(holder, request, probe);
      if (this.isHeld(holder)) return { ok: false, reason: "taken" };
    }
    // The name is free. A returning person (resume key, not connected: see above) takes
    // it, as themselves.
    if (connected) return this.attach(connected, request, probe);
    if (probe) return { ok: true, identity: { id: "", name: request.name, key: request.key }, delivered: 0 };
    const resume = newResumeKey();
    const person: IdentityRecord = { id: newPersonId(), name: request.name, key: request.key, resume: resumeHash(resume), seen: this.now(), delivered: 0 };
    const claim = this.attach(person, request, false);
    this.store.prune((r) => !this.isHeld(r) && (this.connections.get(r.id) ?? 0) === 0);
    return claim.ok ? { ...claim, resume } : claim;
  }

  private attach(person: IdentityRecord, request: ClaimRequest, probe: boolean): Claim {
    const count = this.connections.get(person.id) ?? 0;
    if (count >= (request.maxConnections ?? Infinity)) return { ok: false, reason: "too_many_connections" };
    // Connected already (another tab): it joins under the person's current name. The name
    // it asked for may be a case or look-alike variant ("AIice" for "alice", same key), and
    // one person shows one name; only a person coming back may bring a new spelling.
    const name = count > 0 && person.key === request.key ? person.name : request.name;
    const identity = { id: person.id, name, key: request.key };
    if (probe) return { ok: true, identity, delivered: person.delivered };
    this.connections.set(person.id, count + 1);
    if (count === 0) this.listener({ type: "user.connected", person: person.id, name });
    if (person.key !== request.key && this.store.holder(person.key) === person.id) this.store.clearHolder(person.key, person.id);
    person.name = name;
    person.key = request.key;
    person.seen = this.now();
    this.store.put(person);
    this.store.setHolder(request.key, person.id);
    return { ok: true, identity, delivered: person.delivered };
  }

  detach(id: string, delivered: number): void {
    const count = (this.connections.get(id) ?? 0) - 1;
    if (count > 0) {
      this.connections.set(id, count);
      return;
    }
    this.connections.delete(id);
    const person = this.store.get(id);
    if (!person) return;
    this.listener({ type: "user.disconnected", person: id, name: person.name });
    // The grace period runs from now: the name stays theirs for a reload or a blip.
    person.seen = this.now();
    person.delivered = Math.max(person.delivered, delivered);
    this.store.put(person);
  }

  async rename(id: string, key: string, name: string): Promise<boolean> {
    const person = this.store.get(id);
    if (!person) return false;
    const holderId = this.store.holder(key);
    if (holderId !== undefined && holderId !== id) {
      const holder = this.store.get(holderId);
      if (holder && this.isHeld(holder)) return false;
    }
    // The old name is given up at once: they chose another.
    if (person.key !== key) this.store.clearHolder(person.key, id);
    person.key = key;
    person.name = name;
    this.store.put(person);
    this.store.setHolder(key, id);
    return true;
  }

  async lookup(key: string): Promise<Recipient | null> {
    const id = this.store.holder(key);
    const person = id === undefined ? undefined : this.store.get(id);
    if (!person) return null;
    const here = this.registry.people.get(person.id);
    return { id: person.id, name: person.name, online: (this.connections.get(person.id) ?? 0) > 0, delivered: Math.max(person.delivered, here?.delivered ?? 0) };
  }

  /** Synchronous (no await): the engine calls it right after the registry changed. */
  async joined(room: string, id: string, name: string): Promise<boolean> {
    let people = this.roomPeople.get(room);
    if (!people) {
      people = new Map();
      this.roomPeople.set(room, people);
      this.listener({ type: "room.occupied", room });
    }
    const first = !people.has(id);
    // Again for a member: their new name (nick).
    people.set(id, name);
    if (first) this.listener({ type: "member.joined", room, person: id, name });
    return first;
  }

  async left(room: string, id: string): Promise<boolean> {
    const people = this.roomPeople.get(room);
    const name = people?.get(id);
    if (!people || name === undefined) return false;
    people.delete(id);
    this.listener({ type: "member.left", room, person: id, name });
    if (people.size === 0) {
      this.roomPeople.delete(room);
      this.listener({ type: "room.vacated", room });
    }
    return true;
  }

  async online(room: string): Promise<number> {
    return this.roomPeople.get(room)?.size ?? 0;
  }

  async members(room: string, cap: number): Promise<string[]> {
    const names: string[] = [];
    for (const name of this.roomPeople.get(room)?.values() ?? []) {
      if (names.length >= cap) break;
      names.push(name);
    }
    return names;
  }

  async view(room: string, cap: number): Promise<{ online: number; members: string[] }> {
    return { online: await this.online(room), members: await this.members(room, cap) };
  }

  async rooms(after: string, limit: number): Promise<{ rooms: RoomCount[]; more: boolean }> {
    // An operator's request, not a hot path: sorting the room names is fine.
    const names = [...this.roomPeople.keys()].filter((room) => room > after).sort();
    const page = names.slice(0, limit).map((room) => ({ room, online: this.roomPeople.get(room)!.size }));
    return { rooms: page, more: names.length > limit };
  }

  async memberPage(room: string, cursor: string, limit: number): Promise<{ members: Member[]; next: string | null }> {
    const offset = Number(cursor) || 0;
    const members: Member[] = [];
    let index = 0;
    for (const [id, name] of this.roomPeople.get(room) ?? []) {
      if (index++ < offset) continue;
      if (members.length === limit) return { members, next: String(offset + limit) };
      members.push({ id, name });
    }
    return { members, next: null };
  }

  async otherNodes(): Promise<string[]> {
    return [];
  }

  watch(listener: (event: DirectoryEvent) => void): void {
    this.listener = listener;
  }

  health(): Record<string, unknown> {
    return {};
  }
  async close(): Promise<void> {
    if (this.expiry) clearInterval(this.expiry);
  }
}
