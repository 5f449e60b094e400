// Where the embedded directory keeps people: who holds (or last held) each name, the hash
// of each person's resume key, when they were last connected, and the inbox position they
// were last sent. In the SQLite file next to the history when there is one (so a restart
// keeps people, their private history and their away messages together), else in memory.

export interface IdentityRecord {
  id: string;
  name: string;
  /** The name's comparison key. */
  key: string;
  /** SHA-256 of the resume key (base64url); null for token people. */
  resume: string | null;
  /** Milliseconds: when the person last had a connection (the grace period runs from it). */
  seen: number;
  /** The last inbox position any of their connections was sent. */
  delivered: number;
}

export interface IdentityStore {
  get(id: string): IdentityRecord | undefined;
  byResume(hash: string): IdentityRecord | undefined;
  /** The person holding, or who last held, a name. */
  holder(key: string): string | undefined;
  put(record: IdentityRecord): void;
  setHolder(key: string, id: string): void;
  /** Forget a name's holder (the person took another name). */
  clearHolder(key: string, id: string): void;
  /** In-memory stores drop people nobody can reach any more (`gone`), to stay bounded. */
  prune(gone: (record: IdentityRecord) => boolean): void;
  /** Forget people last seen before `before` (ms) who are not `connected`; how many went. */
  expire(before: number, connected: (id: string) => boolean): number;
  readonly size: number;
}

/** People that fit in memory before those long gone are dropped. */
const MEMORY_LIMIT = 50_000;

export class MemoryIdentities implements IdentityStore {
  private readonly records = new Map<string, IdentityRecord>();
  private readonly resumes = new Map<string, string>();
  private readonly holders = new Map<string, string>();

  get(id: string): IdentityRecord | undefined {
    return this.records.get(id);
  }
  byResume(hash: string): IdentityRecord | undefined {
    const id = this.resumes.get(hash);
    return id === undefined ? undefined : this.records.get(id);
  }
  holder(key: string): string | undefined {
    return this.holders.get(key);
  }
  put(record: IdentityRecord): void {
    this.records.set(record.id, record);
    if (record.resume !== null) this.resumes.set(record.resume, record.id);
  }
  setHolder(key: string, id: string): void {
    this.holders.set(key, id);
  }
  clearHolder(key: string, id: string): void {
    if (this.holders.get(key) === id) this.holders.delete(key);
  }
  expire(before: number, connected: (id: string) => boolean): number {
    let n = 0;
    for (const record of this.records.values()) {
      if (record.seen >= before || connected(record.id)) continue;
      this.forget(record);
      n++;
    }
    return n;
  }
  private forget(record: IdentityRecord): void {
    this.records.delete(record.id);
    if (record.resume !== null) this.resumes.delete(record.resume);
    this.clearHolder(record.key, record.id);
  }
  prune(gone: (record: IdentityRecord) => boolean): void {
    if (this.records.size < MEMORY_LIMIT) return;
    for (const record of this.records.values()) if (gone(record)) this.forget(record);
  }
  get size(): number {
    return this.records.size;
  }
}

interface Db {
  prepare(sql: string): {
    get(...params: (string | number | null)[]): unknown;
    all(...params: (string | number | null)[]): unknown[];
    run(...params: (string | number | null)[]): unknown;
  };
  query(sql: string): { get(): unknown };
}

/** People in the history database (tables created by sqlite.ts's migrations). */
export class SqliteIdentities implements IdentityStore {
  private readonly selectById;
  private readonly selectByResume;
  private readonly selectHolder;
  private readonly upsert;
  private readonly upsertHolder;
  private readonly deleteHolder;
  private readonly count;
  private readonly selectStale;
  private readonly deleteById;

  constructor(db: Db) {
    this.selectById = db.prepare("SELECT id, name, key, resume, seen, delivered FROM identities WHERE id = ?");
    this.selectByResume = db.prepare("SELECT id, name, key, resume, seen, delivered FROM identities WHERE resume = ?");
    this.selectHolder = db.prepare("SELECT id FROM names WHERE key = ?");
    this.upsert = db.prepare(
      `INSERT INTO identities (id, name, key, resume, seen, delivered) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET name = excluded.name, key = excluded.key, resume = excluded.resume, seen = excluded.seen, delivered = excluded.delivered`,
    );
    this.upsertHolder = db.prepare("INSERT INTO names (key, id) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET id = excluded.id");
    this.deleteHolder = db.prepare("DELETE FROM names WHERE key = ? AND id = ?");
    this.count = db.query("SELECT count(*) AS n FROM identities");
    this.selectStale = db.prepare("SELECT id, key FROM identities WHERE seen < ? AND id > ? ORDER BY id LIMIT 500");
    this.deleteById = db.prepare("DELETE FROM identities WHERE id = ?");
  }

  get(id: string): IdentityRecord | undefined {
    return (this.selectById.get(id) as IdentityRecord | null) ?? undefined;
  }
  byResume(hash: string): IdentityRecord | undefined {
    return (this.selectByResume.get(hash) as IdentityRecord | null) ?? undefined;
  }
  holder(key: string): string | undefined {
    return (this.selectHolder.get(key) as { id: string } | null)?.id;
  }
  put(r: IdentityRecord): void {
    this.upsert.run(r.id, r.name, r.key, r.resume, r.seen, r.delivered);
  }
  setHolder(key: string, id: string): void {
    this.upsertHolder.run(key, id);
  }
  clearHolder(key: string, id: string): void {
    this.deleteHolder.run(key, id);
  }
  /** Durable: people stay with their history until their retention is over (expire). */
  prune(): void {}
  expire(before: number, connected: (id: string) => boolean): number {
    // Paged by id: people still connected stay, and must not stop the ones after them.
    let n = 0;
    let after = "";
    for (;;) {
      const stale = this.selectStale.all(before, after) as { id: string; key: string }[];
      for (const r of stale) {
        if (connected(r.id)) continue;
        this.deleteHolder.run(r.key, r.id);
        this.deleteById.run(r.id);
        n++;
      }
      if (stale.length < 500) return n;
      after = stale.at(-1)!.id;
    }
  }
  get size(): number {
    return (this.count.get() as { n: number }).n;
  }
}
