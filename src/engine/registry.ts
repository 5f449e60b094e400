// Who is here, on this node: people (a name with its connections), the names being
// admitted, and which people are in which room. Every change is synchronous, so a race
// between an await elsewhere and a close, join or leave always sees one consistent state.
// Cluster-wide facts live in the Directory; this registry is the local truth.
import type { Session } from "./session.ts";

export class Person {
  readonly sessions = new Set<Session>();
  /** Rooms this person is in, with how many of their connections are in each. */
  readonly rooms = new Map<string, number>();
  constructor(public key: string, public name: string) {}
}

export class Registry {
  readonly people = new Map<string, Person>();
  /** Name keys admitted but not yet open, so two handshakes cannot take one name. */
  private readonly reserved = new Set<string>();
  /** People in each room on this node; a room leaves the map with its last person. */
  private readonly rooms = new Map<string, Set<Person>>();
  private sessionCount = 0;

  get connections(): number {
    return this.sessionCount;
  }

  nameAvailable(key: string): boolean {
    return !this.people.has(key) && !this.reserved.has(key);
  }

  /** Hold a free name for a handshake in progress; false if it is taken or held. */
  reserve(key: string): boolean {
    if (!this.nameAvailable(key)) return false;
    this.reserved.add(key);
    return true;
  }

  unreserve(key: string): void {
    this.reserved.delete(key);
  }

  /** An admitted connection opens: it becomes its person's (new) connection. */
  attach(session: Session): Person {
    this.reserved.delete(session.key);
    let person = this.people.get(session.key);
    if (!person) {
      person = new Person(session.key, session.name);
      this.people.set(session.key, person);
    }
    person.sessions.add(session);
    session.person = person;
    this.sessionCount++;
    return person;
  }

  /** A connection closed; true when it was its person's last (the person is gone). */
  detach(session: Session): boolean {
    const person = session.person;
    if (!person || !person.sessions.delete(session)) return false;
    this.sessionCount--;
    if (person.sessions.size > 0) return false;
    if (this.people.get(person.key) === person) this.people.delete(person.key);
    return true;
  }

  /** A connection enters a room; true when its person was not in it before. */
  enter(person: Person, room: string): boolean {
    const count = person.rooms.get(room) ?? 0;
    person.rooms.set(room, count + 1);
    if (count > 0) return false;
    let members = this.rooms.get(room);
    if (!members) {
      members = new Set();
      this.rooms.set(room, members);
    }
    members.add(person);
    return true;
  }

  /** A connection leaves a room; true when it was its person's last there. */
  exit(person: Person, room: string): boolean {
    const count = person.rooms.get(room);
    if (count === undefined) return false;
    if (count > 1) {
      person.rooms.set(room, count - 1);
      return false;
    }
    person.rooms.delete(room);
    const members = this.rooms.get(room);
    if (members) {
      members.delete(person);
      if (members.size === 0) this.rooms.delete(room);
    }
    return true;
  }

  /** A person takes another name (nick): re-keyed here, the old key freed. */
  rename(person: Person, key: string, name: string): void {
    if (key !== person.key) {
      if (this.people.get(person.key) === person) this.people.delete(person.key);
      this.reserved.delete(key);
      person.key = key;
      this.people.set(key, person);
    }
    person.name = name;
    for (const s of person.sessions) {
      s.key = key;
      s.name = name;
    }
  }

  localOnline(room: string): number {
    return this.rooms.get(room)?.size ?? 0;
  }

  localMembers(room: string, cap: number): string[] {
    const names: string[] = [];
    const members = this.rooms.get(room);
    if (!members) return names;
    for (const person of members) {
      if (names.length >= cap) break;
      names.push(person.name);
    }
    return names;
  }

  /** Rooms with at least one person on this node (for tests and re-announcing). */
  get roomCount(): number {
    return this.rooms.size;
  }

  *sessions(): IterableIterator<Session> {
    for (const person of this.people.values()) yield* person.sessions;
  }
}
