// What the page remembers, and where:
//   sessionStorage "bunchat.tab"     this tab's person, rooms and conversations: a reload
//                                    (same tab) signs straight back in with them.
//   localStorage   "bunchat.people"  every person this browser has been, with the resume
//                                    key: a new tab offers "continue as <name>" for them, or
//                                    a new name (a new person: the two-tab demo).
// The resume key is the person's proof of identity, kept like a session cookie would be.

export interface PersonRecord {
  name: string;
  resume: string;
  rooms: string[];
  conversations: string[];
  /** When this person was last used here (ms): the most recent is offered first. */
  at: number;
}

export interface TabRecord {
  name: string;
  resume?: string;
  rooms: string[];
  conversations: string[];
  /** The inbox position: private messages after it arrive on reload (and count as unread). */
  inbox?: number;
  /** The channel on screen ("#room" or "@name"). */
  current?: string;
}

const PEOPLE = "bunchat.people";
const TAB = "bunchat.tab";
const MAX_PEOPLE = 5;

/** Names compare case-insensitively here, as the server's do (closely enough for a lookup). */
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

function read<T>(storage: Storage, key: string): T | null {
  try {
    const text = storage.getItem(key);
    return text === null ? null : (JSON.parse(text) as T);
  } catch {
    return null; // unreadable (private mode, corrupted): the page starts from scratch
  }
}

function write(storage: Storage, key: string, value: unknown): void {
  try {
    storage.setItem(key, JSON.stringify(value));
  } catch {
    // Storage full or refused: remembering is a comfort, not a requirement.
  }
}

/** People this browser has been, most recent first. */
export function knownPeople(): PersonRecord[] {
  const list = read<PersonRecord[]>(localStorage, PEOPLE);
  return Array.isArray(list) ? list.filter((p) => typeof p?.name === "string" && typeof p.resume === "string").sort((a, b) => b.at - a.at) : [];
}

export function personNamed(name: string): PersonRecord | undefined {
  return knownPeople().find((p) => same(p.name, name));
}

export function rememberPerson(person: Omit<PersonRecord, "at">, formerName?: string): void {
  const others = knownPeople().filter((p) => !same(p.name, person.name) && !(formerName !== undefined && same(p.name, formerName)));
  write(localStorage, PEOPLE, [{ ...person, at: Date.now() }, ...others].slice(0, MAX_PEOPLE));
}

/** The server refused this person's key: stop offering it. */
export function forgetPerson(name: string): void {
  write(localStorage, PEOPLE, knownPeople().filter((p) => !same(p.name, name)));
}

export function tabRecord(): TabRecord | null {
  const tab = read<TabRecord>(sessionStorage, TAB);
  return tab && typeof tab.name === "string" && Array.isArray(tab.rooms) ? tab : null;
}

export function saveTab(tab: TabRecord): void {
  write(sessionStorage, TAB, tab);
}

export function clearTab(): void {
  try {
    sessionStorage.removeItem(TAB);
  } catch {
    // nothing to clear
  }
}
