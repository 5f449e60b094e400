// Who is here, on this node: people (one identity with its connections, tabs and
// devices) and which people are in which room. Every change is synchronous, so a race
// between an await elsewhere and a close, join or leave always sees one consistent state.
// Who may hold a name is the Directory's to decide; this registry is the local truth.
import type { Identity } from "./ports.ts";
import type { Session } from "./session.ts";
import { CompactMap } from "./compact-map.ts";
import { SmallSet } from "./small.ts";

/** Shared by every person who is not renaming: a promise each would cost memory per person. */
const SETTLED: Promise<void> = Promise.resolve();

/**
 * A person here: the set of their connections on this node (the first held inline, as
 * SmallSet does: one object per person rather than two), and who they are.
 */
export class Person extends SmallSet<Session> {
  /** The highest inbox position sent to any of their connections here. */
  delivered = 0;
  /** The rename (nick) in progress; the next one waits for it. */
  renaming: Promise<void> = SETTLED;
  constructor(readonly id: string, public key: string, public name: string) {
    super();
  }

  /** Their connections on this node. */
  get sessions(): SmallSet<Session> {
    return this;
  }

  /**
   * Rooms this person is in (entering included), each once. Read from their connections'
   * memberships rather than kept beside them: one record less per person, and a handful
   * of connections to look through at most.
   */
  rooms(): string[] {
    const rooms: string[] = [];
    for (const s of this.sessions) for (const room of s.rooms.keys()) if (!rooms.includes(room)) rooms.push(room);
    return rooms;
  }

  /** Whether a connection of this person other than `except` is in (or entering) `room`. */
  inRoom(room: string, except: Session): boolean {
    for (const s of this.sessions) if (s !== except && s.rooms.has(room)) return true;
    return false;
  }
}

/** A room with people on this node: its name (the string every membership shares) and how many. */
interface RoomHere {
  readonly name: string;
  people: number;
}

export class Registry {
  /** People with a connection on this node, by identity id. */
  readonly people = new CompactMap<Person>();
  /** The same people by their name's key. */
  private readonly byKey = new CompactMap<Person>();
  /**
   * How many people are in each room on this node, and the room's name string (a count,
   * not a set: one entry per room rather than per person); a room leaves the map with its
   * last person.
   */
  private readonly rooms = new Map<string, RoomHere>();
  private sessionCount = 0;

  get connections(): number {
    return this.sessionCount;
  }

  /** The person here who holds a name, if any. */
  named(key: string): Person | undefined {
    return this.byKey.get(key);
  }

  /** An admitted connection opens: it becomes (another) connection of its person. */
  attach(session: Session, identity: Identity, delivered: number): Person {
    let person = this.people.get(identity.id);
    if (!person) {
      person = new Person(identity.id, identity.key, identity.name);
      this.people.set(identity.id, person);
      this.byKey.set(identity.key, person);
    }
    if (delivered > person.delivered) person.delivered = delivered;
    person.sessions.add(session);
    session.person = person;
    this.sessionCount++;
    return person;
  }

  /** A connection closed; true when it was its person's last here. */
  detach(session: Session): boolean {
    const person = session.person;
    if (!person || !person.sessions.delete(session)) return false;
    this.sessionCount--;
    if (person.sessions.size > 0) return false;
    if (this.people.get(person.id) === person) this.people.delete(person.id);
    if (this.byKey.get(person.key) === person) this.byKey.delete(person.key);
    return true;
  }

  /**
   * The room's name as this node holds it already, else `room`: every membership of a room
   * keeps that one string, not the copy each join frame or connect URL brought.
   */
  roomName(room: string): string {
    return this.rooms.get(room)?.name ?? room;
  }

  /**
   * A connection recorded its membership of a room (call it right after); true when its
   * person was not in the room before.
   */
  enter(session: Session, room: string): boolean {
    const person = session.person;
    if (!person || person.inRoom(room, session)) return false;
    const here = this.rooms.get(room);
    if (here) here.people++;
    else this.rooms.set(room, { name: room, people: 1 });
    return true;
  }

  /**
   * A connection dropped its membership of a room (call it right after); true when it was
   * its person's last there.
   */
  exit(session: Session, room: string): boolean {
    const person = session.person;
    if (!person || person.inRoom(room, session)) return false;
    const here = this.rooms.get(room);
    if (here && --here.people > 0) return true;
    this.rooms.delete(room);
    return true;
  }

  /** A person takes another name (nick). */
  rename(person: Person, key: string, name: string): void {
    if (this.byKey.get(person.key) === person) this.byKey.delete(person.key);
    person.key = key;
    person.name = name;
    this.byKey.set(key, person);
  }

  /** People in a room on this node. */
  localOnline(room: string): number {
    return this.rooms.get(room)?.people ?? 0;
  }

  /** Rooms with at least one person on this node. */
  get roomCount(): number {
    return this.rooms.size;
  }

  *sessions(): IterableIterator<Session> {
    for (const person of this.people.values()) yield* person.sessions;
  }
}
